"""The code location `dagster dev -w workspace.yaml` loads.

For now it offers the Salesforce connection every sync will share; syncs declared in YAML add
their assets, checks and sensors here. Secrets come from environment variables at run time
(`SF_USERNAME`, `SF_PASSWORD`, `SF_SECURITY_TOKEN`), never from code or config files.
"""

from __future__ import annotations

import dagster as dg

from resources.salesforce import SalesforceResource

salesforce = SalesforceResource(
    auth_flow="password",
    login_url=dg.EnvVar("SF_LOGIN_URL"),
    username=dg.EnvVar("SF_USERNAME"),
    password=dg.EnvVar("SF_PASSWORD"),
    security_token=dg.EnvVar("SF_SECURITY_TOKEN"),
)

defs = dg.Definitions(resources={"salesforce": salesforce})
