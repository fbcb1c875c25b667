import json


def handler(event, context):
    query = event.get("multiValueQueryStringParameters") or {}
    name = (query.get("name") or ["world"])[-1]
    return {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "isBase64Encoded": False,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": json.dumps({"message": f"hello, {name}", "path": event.get("path")}),
    }
