"""The daemon's HTTP faces: the Lambda Invoke API and ALB-style listeners."""
