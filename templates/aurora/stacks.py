"""A backend with a private database: a VPC with one NAT gateway, Aurora Serverless v2
(MySQL) behind an RDS Proxy with IAM auth and TLS, a Client VPN for your laptop, and an HTTP
API whose functions read and write the database.

The VPN needs two certificates in ACM: `pylive vpn certs && pylive vpn import` creates and
imports them and writes their ARNs to .pylive/vpn/arns.json, which this module reads. Until
then the VPN is left out (everything else deploys, and `pylive dev --local` needs none of it).
"""

import json
from pathlib import Path

from aws_cdk import Stack
from constructs import Construct

from pylive.constructs import Api, ClientVpn, Database, Function, Network

VPN_ARNS = Path(".pylive") / "vpn" / "arns.json"


class AppStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        network = Network(self, "Network")
        database = Database(self, "Database", network=network, database_name="app")

        certificates = vpn_certificates()
        if certificates:
            vpn = ClientVpn(self, "Vpn", network=network, **certificates)
            database.allow_from(vpn)

        def db_function(construct_id: str, handler: str) -> Function:
            function = Function(
                self, construct_id, handler=handler, timeout=10, memory_size=256, network=network
            )
            database.grant_connect(function, db_user="app")
            return function

        # The schema step: creates the table (and, in AWS, the database user the functions
        # connect as). `pylive deploy` runs it once the database is up, and again when its
        # code changes; locally, run `pylive invoke migrate`.
        migrate = Function(
            self, "migrate", handler="functions/schema.migrate", timeout=60, network=network
        )
        database.grant_connect(migrate, db_user=database.master_username)
        migrate.grant(database.user_secrets["app"].grant_read)
        migrate.add_environment("APP_USER_SECRET_ARN", database.user_secrets["app"].secret_arn)
        migrate.run_on_deploy(after=[database])

        Api(
            self,
            "Api",
            routes={
                "GET /items": db_function("list-items", "functions/items.list_items"),
                "POST /items": db_function("create-item", "functions/items.create_item"),
            },
        )


def vpn_certificates() -> dict[str, str] | None:
    if not VPN_ARNS.exists():
        return None
    arns = json.loads(VPN_ARNS.read_text())
    return {
        "server_certificate_arn": arns["server_certificate_arn"],
        "client_certificate_arn": arns["client_certificate_arn"],
    }


def stacks(app: Construct) -> None:
    AppStack(app, "App")
