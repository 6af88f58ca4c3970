"""`ecs-drain-hook`: see and steer the drains a deployment of ecs-drain-hook has under way.

    ecs-drain-hook status [--cluster C] [--group G]
    ecs-drain-hook explain INSTANCE
    ecs-drain-hook release INSTANCE --result continue|abandon [--yes]
    ecs-drain-hook drain INSTANCE [--dry-run]

A thin layer: `aws` reads and writes AWS (boto3, the usual profile and Region resolution),
`views` holds what was read, `render` turns it into a table or JSON without AWS, `main` parses
the command line. Nothing here is imported by the Lambda.
"""
