"""The daemon's HTTP server and the user's HTTP triggers (ALB listeners, API Gateway routes,
function URLs); the AWS-protocol endpoints on the API port live in `lambdad.api`."""
