"""The app's infrastructure: pylive synthesizes this module with the AWS CDK."""

from aws_cdk import Stack
from constructs import Construct

from pylive.constructs import Api


class AppStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Api(self, "Api", routes={"GET /": "functions/hello.handler"})


def stacks(app: Construct) -> None:
    AppStack(app, "App")
