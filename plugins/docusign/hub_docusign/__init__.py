"""DocuSign eSignature for the integration hub."""
