"""The SQS queues a ``Function`` consumes, with their visibility timeouts, found at synth.

Lambda requires an SQS event source's queue to have a visibility timeout of at least the
function's timeout; ``Function.fit_dev_timeout`` keeps the dev-mode timeout within it. Event
sources are usually added after the function, so the check runs as an aspect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct

if TYPE_CHECKING:
    from pylive.constructs.function import Function

# What SQS uses when a queue sets none (CreateQueue's VisibilityTimeout default).
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30


@jsii.implements(cdk.IAspect)
class FitDevTimeout:
    def __init__(self, function: Function) -> None:
        self.function = function

    def visit(self, node: IConstruct) -> None:
        if node.node.path == self.function.node.path:
            self.function.fit_dev_timeout()


def consumed_queues(function: lambda_.Function) -> list[tuple[sqs.Queue, float]]:
    """The SQS queues of the app that ``function`` has event sources for, with their
    visibility timeouts (in seconds; queues whose timeout is only known at deploy time are
    left out)."""
    mappings = [
        child for child in function.node.children if isinstance(child, lambda_.EventSourceMapping)
    ]
    if not mappings:
        return []
    sources = set()
    for mapping in mappings:
        cfn = mapping.node.default_child
        if isinstance(cfn, lambda_.CfnEventSourceMapping) and cfn.event_source_arn:
            sources.add(cfn.event_source_arn)
    found: list[tuple[sqs.Queue, float]] = []
    for node in function.node.root.node.find_all():
        if isinstance(node, sqs.Queue) and node.queue_arn in sources:
            queue = node.node.default_child
            value = queue.visibility_timeout if isinstance(queue, sqs.CfnQueue) else None
            if value is None:
                found.append((node, float(SQS_DEFAULT_VISIBILITY_TIMEOUT)))
            elif isinstance(value, int | float) and not cdk.Token.is_unresolved(value):
                found.append((node, float(value)))
    return found
