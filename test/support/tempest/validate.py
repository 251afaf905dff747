"""Checks compute API answers against Tempest's own response schemas (tempest.lib.api_schema).

stdin: a JSON list of {"version": "2.45", "schema": "servers.get_server", "status": 200, "body": {...}}
where schema names a client module and a schema in it (servers.* through ServersClient's version
table, versions.* from v2_1). stdout: a JSON list of {"index", "error"} for every answer refused.
"""
import json
import sys

from tempest.lib.api_schema.response.compute.v2_1 import versions as versions_schema
from tempest.lib.common import rest_client
from tempest.lib.services.compute import base_compute_client, servers_client


class Response(dict):
    def __init__(self, status):
        super().__init__()
        self.status = status


def schema_for(version, name):
    module, _, attribute = name.partition('.')
    if module == 'versions':
        return getattr(versions_schema, attribute)
    if module != 'servers':
        raise ValueError('unknown schema module %s' % module)
    # get_schema reads the module-wide microversion, as Tempest's clients set it per request.
    base_compute_client.COMPUTE_MICROVERSION = version
    client = object.__new__(servers_client.ServersClient)
    return getattr(client.get_schema(servers_client.ServersClient.schema_versions_info), attribute)


def main():
    failures = []
    for index, case in enumerate(json.load(sys.stdin)):
        try:
            schema = schema_for(case['version'], case['schema'])
            rest_client.RestClient.validate_response(schema, Response(case['status']), case['body'])
        except Exception as error:  # every refusal is reported, whatever its type
            failures.append({'index': index, 'error': '%s: %s' % (type(error).__name__, str(error)[:2000])})
    json.dump(failures, sys.stdout)


if __name__ == '__main__':
    main()
