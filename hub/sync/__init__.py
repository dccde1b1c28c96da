"""The sync engine: outbound pushes with mappings and change detection, inbound pulls into ``records``."""
