def handler(event, context):
    return 0.1 + 0.2
