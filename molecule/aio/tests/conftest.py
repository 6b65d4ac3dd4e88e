"""Clients of the deployed cloud for the aio checks: the openstack CLI and openstacksdk with the admin clouds.yaml."""

import json
import os
import subprocess

import openstack
import pytest

CLOUD = "stackwright"


@pytest.fixture(scope="session")
def clouds_yaml(credentials_dir):
    return credentials_dir / "clouds.yaml"


@pytest.fixture(scope="session")
def cli(clouds_yaml):
    """Runs `openstack <args> -f json` as the admin user and returns the parsed output."""
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds_yaml), OS_CLOUD=CLOUD)

    def run(*args):
        out = subprocess.run(["openstack", *args, "-f", "json"], env=env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    return run


@pytest.fixture(scope="session")
def conn(clouds_yaml):
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return openstack.connection.Connection(config=config.get_one(cloud=CLOUD))
