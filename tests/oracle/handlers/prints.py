import sys


def handler(event, context):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    return "printed"
