"""The AWS-protocol endpoints on the daemon's API port: Lambda's Invoke API, SQS (JSON and query)
and Kinesis, each a thin face over its service, behind one app that routes a request to the
protocol it speaks. A new AWS API (S3, SNS, EventBridge) joins here."""
