"""DocuSign passes the conformance suite every provider plugin runs."""

from hub.testing.conformance import conformance_suite
from hub_docusign.testing import DocuSignAdapter

TestDocuSignConformance = conformance_suite(DocuSignAdapter())
