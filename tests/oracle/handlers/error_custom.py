class PaymentDeclinedError(Exception):
    pass


def handler(event, context):
    raise PaymentDeclinedError("card declined")
