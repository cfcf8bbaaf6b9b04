"""The code location the topology test serves: sf-assets' own definitions, with every step
started in a folder of its own (executor.py)."""

import dagster as dg

from sf_assets.definitions import load_definitions
from tests.deploy.executor import temp_folder_executor

defs = dg.Definitions.merge(load_definitions(), dg.Definitions(executor=temp_folder_executor))
