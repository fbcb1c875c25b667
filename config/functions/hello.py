import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    event = event if isinstance(event, dict) else {}
    # Invoked directly ({"name": ...}) or through the API Gateway route GET /greet/{name}.
    name = (event.get("pathParameters") or {}).get("name") or event.get("name", "world")
    logger.info("greeting %s", name)
    return {"message": f"hello, {name}", "request_id": context.aws_request_id}
