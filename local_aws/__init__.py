"""Local AWS sandbox: moto plus the behaviour it lacks, for the demo and end-to-end tests.

Importing it installs `local_aws.service_model`: from then on every botocore client in the
process has its requests checked against the service model as AWS checks them.
"""

from local_aws import service_model as _service_model

_service_model.install()
