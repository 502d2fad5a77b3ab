def inner(value):
    raise ValueError(f"bad thing: {value}")


def middle(value):
    return inner(value)


def handler(event, context):
    return middle(7)
