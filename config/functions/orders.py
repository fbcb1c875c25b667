import base64


def handler(event, context):
    """Takes SQS batches from the `orders` queue and Kinesis batches from the `clicks` stream."""
    for record in event["Records"]:
        if record.get("eventSource") == "aws:sqs":
            print(f"order {record['messageId']}: {record['body']}")
        else:
            data = base64.b64decode(record["kinesis"]["data"]).decode(errors="replace")
            print(f"click {record['kinesis']['partitionKey']} #{record['kinesis']['sequenceNumber'][-6:]}: {data}")
    return {"processed": len(event["Records"])}
