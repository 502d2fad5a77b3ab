def other(event, context):
    return "not the configured handler"
