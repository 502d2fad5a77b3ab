# Parses, but the compiler rejects it: `return` outside a function is a SyntaxError.
value = 1
return value  # noqa: F706


def handler(event, context):
    return value
