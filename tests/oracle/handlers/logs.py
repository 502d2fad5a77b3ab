import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    logger.info("info %s", 1)
    logging.getLogger("app.db").warning("warn: %s", "slow")
    logger.debug("hidden")
    return "logged"
