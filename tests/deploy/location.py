"""The code location the topology test serves: sf-assets' own definitions, with every step
started in a folder of its own (executor.py)."""

from sf_assets.definitions import load_definitions
from tests.deploy.executor import temp_folder_executor

defs = load_definitions(executor=temp_folder_executor)
