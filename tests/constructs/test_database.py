from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Match, Template

from pylive.constructs import ClientVpn, Database, Function, Network

SERVER_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/server"
CLIENT_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/client"


@dataclass
class Built:
    network: Network
    database: Database
    function: Function
    vpn: ClientVpn
    template: Template
    knobs: Database
    knobs_template: Template
    grant: Any


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("database")
    app = cdk.App(outdir=str(root / "cdk.out"), context={"pylive:root": str(root)})

    stack = cdk.Stack(app, "Default")
    network = Network(stack, "Network")
    database = Database(stack, "Database", network=network)
    function = Function(stack, "items", handler="functions/items.handler", network=network)
    grant = database.grant_connect(function)
    vpn = ClientVpn(
        stack,
        "Vpn",
        network=network,
        server_certificate_arn=SERVER_CERT,
        client_certificate_arn=CLIENT_CERT,
    )
    database.allow_from(vpn)

    other = cdk.Stack(app, "Knobs")
    knobs = Database(
        other,
        "Database",
        network=Network(other, "Network"),
        database_name="shop",
        min_capacity=1,
        max_capacity=4,
        engine_version=rds.AuroraMysqlEngineVersion.VER_3_12_0,
        master_username="root_user",
        users=("reader", "writer"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        deletion_protection=True,
        backup_retention=cdk.Duration.days(14),
        proxy_debug_logging=False,
        idle_client_timeout=cdk.Duration.minutes(30),
        max_connections_percent=50,
        log_exports=("error", "slowquery"),
    )
    return Built(
        network, database, function, vpn, Template.from_stack(stack),
        knobs, Template.from_stack(other), grant,
    )  # fmt: skip


def only(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(type_)
    assert len(resources) == 1, f"{len(resources)} {type_}"
    [(logical_id, resource)] = resources.items()
    return logical_id, resource


def logical_id(template: Template, type_: str, path_part: str) -> str:
    """The logical id of the one ``type_`` resource whose id contains ``path_part``."""
    ids = [i for i in template.find_resources(type_) if path_part in i]
    assert len(ids) == 1, ids
    return ids[0]


# --- the cluster ------------------------------------------------------------------------


def test_aurora_mysql_serverless_v2(built: Built) -> None:
    _, cluster = only(built.template, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-mysql"
    assert props["EngineVersion"] == "8.0.mysql_aurora.3.08.0"
    assert props["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 16}
    assert props["DatabaseName"] == "app"
    assert props["Port"] == 3306
    assert props["StorageEncrypted"] is True


def test_serverless_writer_not_publicly_accessible(built: Built) -> None:
    cluster_id, _ = only(built.template, "AWS::RDS::DBCluster")
    _, instance = only(built.template, "AWS::RDS::DBInstance")
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    assert instance["Properties"]["PubliclyAccessible"] is False
    assert instance["Properties"]["DBClusterIdentifier"] == {"Ref": cluster_id}


def test_iam_auth_and_log_exports(built: Built) -> None:
    built.template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "EnableIAMDatabaseAuthentication": True,
            "EnableCloudwatchLogsExports": ["audit", "error", "general", "slowquery"],
        },
    )


def cluster_parameters(template: Template) -> dict[str, str]:
    """The parameters of the cluster's own DB cluster parameter group."""
    group_id, group = only(template, "AWS::RDS::DBClusterParameterGroup")
    _, cluster = only(template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DBClusterParameterGroupName"] == {"Ref": group_id}
    parameters: dict[str, str] = group["Properties"]["Parameters"]
    return parameters


def test_the_parameter_group_produces_every_exported_log(built: Built) -> None:
    """Aurora writes only the error log by default: the general, slow query and audit logs
    it exports stay empty unless the cluster's parameters turn them on, written to files."""
    parameters = cluster_parameters(built.template)
    assert parameters["general_log"] == "1"
    assert parameters["slow_query_log"] == "1"
    assert parameters["log_output"] == "FILE"
    assert parameters["server_audit_logging"] == "1"
    # connections and schema or permission changes, not every statement's data
    assert parameters["server_audit_events"] == "CONNECT,QUERY_DCL,QUERY_DDL"


def test_only_the_chosen_logs_are_exported_and_produced(built: Built) -> None:
    _, cluster = only(built.knobs_template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["EnableCloudwatchLogsExports"] == ["error", "slowquery"]
    parameters = cluster_parameters(built.knobs_template)
    assert parameters == {"slow_query_log": "1", "log_output": "FILE"}


def test_removal_backup_and_deletion_protection_defaults(built: Built) -> None:
    _, cluster = only(built.template, "AWS::RDS::DBCluster")
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["UpdateReplacePolicy"] == "Snapshot"
    assert cluster["Properties"]["DeletionProtection"] is False
    assert cluster["Properties"]["BackupRetentionPeriod"] == 7


def test_private_subnets_only(built: Built) -> None:
    template = built.template
    _, group = only(template, "AWS::RDS::DBSubnetGroup")
    private = [
        {"Ref": i}
        for i in template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])
                }
            },
        )
    ]
    assert sorted(map(str, group["Properties"]["SubnetIds"])) == sorted(map(str, private))
    _, proxy = only(template, "AWS::RDS::DBProxy")
    assert sorted(map(str, proxy["Properties"]["VpcSubnetIds"])) == sorted(map(str, private))


def test_generated_secret_holds_the_credentials(built: Built) -> None:
    template = built.template
    cluster_id, cluster = only(template, "AWS::RDS::DBCluster")
    secret_id = logical_id(template, "AWS::SecretsManager::Secret", "ClusterSecret")
    secret = template.find_resources("AWS::SecretsManager::Secret")[secret_id]["Properties"]
    generated = secret["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"username": "admin"}
    assert generated["GenerateStringKey"] == "password"
    assert cluster["Properties"]["MasterUsername"] == "admin"
    password = json.dumps(cluster["Properties"]["MasterUserPassword"])
    assert "resolve:secretsmanager" in password and secret_id in password
    template.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret_id}, "TargetId": {"Ref": cluster_id},
         "TargetType": "AWS::RDS::DBCluster"},
    )  # fmt: skip


def test_own_security_groups(built: Built) -> None:
    template = built.template
    cluster_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseClusterSecurityGroup")
    proxy_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseProxySecurityGroup")
    _, cluster = only(template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["VpcSecurityGroupIds"] == [{"Fn::GetAtt": [cluster_sg, "GroupId"]}]
    _, proxy = only(template, "AWS::RDS::DBProxy")
    assert proxy["Properties"]["VpcSecurityGroupIds"] == [{"Fn::GetAtt": [proxy_sg, "GroupId"]}]
    # the cluster admits the proxy, and nothing else
    ingress = template.find_resources(
        "AWS::EC2::SecurityGroupIngress",
        {"Properties": {"GroupId": {"Fn::GetAtt": [cluster_sg, "GroupId"]}}},
    )
    [rule] = [r["Properties"] for r in ingress.values()]
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [proxy_sg, "GroupId"]}
    assert rule["IpProtocol"] == "tcp"
    sg = template.find_resources("AWS::EC2::SecurityGroup")[cluster_sg]["Properties"]
    assert "SecurityGroupIngress" not in sg


# --- the proxy --------------------------------------------------------------------------


def test_proxy_tls_iam_timeout_and_logging(built: Built) -> None:
    secret_attachment = logical_id(
        built.template, "AWS::SecretsManager::SecretTargetAttachment", "Database"
    )
    user_secret = logical_id(built.template, "AWS::SecretsManager::Secret", "appSecret")
    built.template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "EngineFamily": "MYSQL",
            "RequireTLS": True,
            "IdleClientTimeout": 7200,
            "DebugLogging": True,
            "Auth": [
                {
                    "AuthScheme": "SECRETS",
                    "IAMAuth": "REQUIRED",
                    "SecretArn": {"Ref": secret_attachment},
                },
                {"AuthScheme": "SECRETS", "IAMAuth": "REQUIRED", "SecretArn": {"Ref": user_secret}},
            ],
        },
    )


def test_proxy_name_is_unique_per_stack(built: Built) -> None:
    names = [
        only(t, "AWS::RDS::DBProxy")[1]["Properties"]["DBProxyName"]
        for t in (built.template, built.knobs_template)
    ]
    assert names[0] != names[1]
    for name in names:
        assert re.fullmatch(r"[A-Za-z](?:-?[A-Za-z0-9])*", name) and len(name) <= 60


def test_proxy_targets_the_cluster_with_all_connections(built: Built) -> None:
    cluster_id, _ = only(built.template, "AWS::RDS::DBCluster")
    proxy_id, _ = only(built.template, "AWS::RDS::DBProxy")
    built.template.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {
            "DBProxyName": {"Ref": proxy_id},
            "DBClusterIdentifiers": [{"Ref": cluster_id}],
            "ConnectionPoolConfigurationInfo": {"MaxConnectionsPercent": 100},
        },
    )


def test_user_secret_for_the_app_user(built: Built) -> None:
    assert set(built.database.user_secrets) == {"app"}
    secret_id = logical_id(built.template, "AWS::SecretsManager::Secret", "appSecret")
    secret = built.template.find_resources("AWS::SecretsManager::Secret")[secret_id]
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "password"
    # {"username": "app", "dbname": "app", "masterarn": <the admin secret>}
    head = generated["SecretStringTemplate"]["Fn::Join"][1][0]
    assert head.startswith('{"username":"app","dbname":"app",')


@pytest.mark.parametrize("source", ["function", "vpn"])
def test_proxy_admits_function_and_vpn_on_3306(built: Built, source: str) -> None:
    template = built.template
    proxy_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseProxySecurityGroup")
    source_sg = logical_id(
        template,
        "AWS::EC2::SecurityGroup",
        "itemsFunctionSecurityGroup" if source == "function" else "VpnSecurityGroup",
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": {"Fn::GetAtt": [proxy_sg, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [source_sg, "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 3306,
            "ToPort": 3306,
        },
    )


def test_proxy_admits_nothing_else(built: Built) -> None:
    template = built.template
    proxy_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseProxySecurityGroup")
    rules = template.find_resources(
        "AWS::EC2::SecurityGroupIngress",
        {"Properties": {"GroupId": {"Fn::GetAtt": [proxy_sg, "GroupId"]}}},
    )
    assert len(rules) == 2
    sg = template.find_resources("AWS::EC2::SecurityGroup")[proxy_sg]["Properties"]
    assert "SecurityGroupIngress" not in sg


# A group created without SecurityGroupEgress gets EC2's default allow-all egress rule, which
# separate AWS::EC2::SecurityGroupEgress resources add to instead of replacing
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html):
# the group itself must hold an egress rule, one that matches no traffic.
NO_TRAFFIC = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "FromPort": 252,
    "IpProtocol": "icmp",
    "ToPort": 86,
}


@pytest.mark.parametrize("group", ["Proxy", "Cluster"])
def test_security_groups_keep_no_default_egress(built: Built, group: str) -> None:
    template = built.template
    sg_id = logical_id(template, "AWS::EC2::SecurityGroup", f"Database{group}SecurityGroup")
    sg = template.find_resources("AWS::EC2::SecurityGroup")[sg_id]["Properties"]
    assert sg.get("SecurityGroupEgress") == [NO_TRAFFIC]


def test_proxy_egress_goes_to_the_cluster_only(built: Built) -> None:
    template = built.template
    proxy_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseProxySecurityGroup")
    cluster_sg = logical_id(template, "AWS::EC2::SecurityGroup", "DatabaseClusterSecurityGroup")
    rules = template.find_resources(
        "AWS::EC2::SecurityGroupEgress",
        {"Properties": {"GroupId": {"Fn::GetAtt": [proxy_sg, "GroupId"]}}},
    )
    [rule] = [r["Properties"] for r in rules.values()]
    assert rule["DestinationSecurityGroupId"] == {"Fn::GetAtt": [cluster_sg, "GroupId"]}
    assert rule["IpProtocol"] == "tcp"


# --- grant_connect ----------------------------------------------------------------------


def function_policy_statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("itemsFunctionServiceRole")}]}},
    )
    assert len(policies) == 1
    statements: list[dict[str, Any]] = next(iter(policies.values()))["Properties"][
        "PolicyDocument"
    ]["Statement"]
    return statements


def test_grant_connect_is_rds_db_connect_on_the_proxy_for_one_user(built: Built) -> None:
    proxy_id, _ = only(built.template, "AWS::RDS::DBProxy")
    [statement] = function_policy_statements(built.template)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "rds-db:connect"
    join = statement["Resource"]["Fn::Join"]
    assert join[0] == ""
    parts = join[1]
    assert ":rds-db:" in parts and ":dbuser:" in parts
    assert parts[-1] == "/app"
    resource_id = parts[-2]  # prx-... taken from the proxy's ARN
    assert resource_id["Fn::Select"][1]["Fn::Split"][1] == {"Fn::GetAtt": [proxy_id, "DBProxyArn"]}
    assert built.grant.success


def test_no_wildcards_in_the_function_policy(built: Built) -> None:
    for statement in function_policy_statements(built.template):
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action
        assert "*" not in json.dumps(statement["Resource"])


def test_grant_connect_sets_the_environment(built: Built) -> None:
    proxy_id, _ = only(built.template, "AWS::RDS::DBProxy")
    built.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": {
                    "PYLIVE_DB_HOST": {"Fn::GetAtt": [proxy_id, "Endpoint"]},
                    "PYLIVE_DB_PORT": "3306",
                    "PYLIVE_DB_NAME": "app",
                    "PYLIVE_DB_USER": "app",
                    "PYLIVE_DB_REGION": {"Ref": "AWS::Region"},
                }
            }
        },
    )
    env = built.function.environment  # also what local runs see
    assert env["PYLIVE_DB_PORT"] == "3306" and env["PYLIVE_DB_USER"] == "app"
    assert set(env) == {
        "PYLIVE_DB_HOST", "PYLIVE_DB_PORT", "PYLIVE_DB_NAME", "PYLIVE_DB_USER",
        "PYLIVE_DB_REGION",
    }  # fmt: skip


def test_function_runs_in_the_private_subnets(built: Built) -> None:
    template = built.template
    private = [
        {"Ref": i}
        for i in template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])
                }
            },
        )
    ]
    function_sg = logical_id(template, "AWS::EC2::SecurityGroup", "itemsFunctionSecurityGroup")
    _, fn = only(template, "AWS::Lambda::Function")
    vpc_config = fn["Properties"]["VpcConfig"]
    assert sorted(map(str, vpc_config["SubnetIds"])) == sorted(map(str, private))
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [function_sg, "GroupId"]}]


def test_outputs(built: Built) -> None:
    template = built.template
    proxy_id, _ = only(template, "AWS::RDS::DBProxy")
    attachment = logical_id(template, "AWS::SecretsManager::SecretTargetAttachment", "Database")
    outputs = {
        name: output["Value"]
        for name, output in template.find_outputs("*").items()
        if name.startswith("Database")
    }
    values = {re.sub(r"[0-9A-F]{8}$", "", name): value for name, value in outputs.items()}
    assert values == {
        "DatabaseProxyEndpoint": {"Fn::GetAtt": [proxy_id, "Endpoint"]},
        "DatabaseSecretArn": {"Ref": attachment},
        "DatabaseDatabaseName": "app",
        "DatabaseappSecretArn": {
            "Ref": logical_id(template, "AWS::SecretsManager::Secret", "appSecret")
        },
    }


# --- knobs ------------------------------------------------------------------------------


def test_knobs_reach_the_template(built: Built) -> None:
    template = built.knobs_template
    _, cluster = only(template, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["EngineVersion"] == "8.0.mysql_aurora.3.12.0"
    assert props["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 1, "MaxCapacity": 4}
    assert props["DatabaseName"] == "shop"
    assert props["MasterUsername"] == "root_user"
    assert props["DeletionProtection"] is True
    assert props["BackupRetentionPeriod"] == 14
    assert cluster["DeletionPolicy"] == "Delete"
    _, proxy = only(template, "AWS::RDS::DBProxy")
    assert proxy["Properties"]["DebugLogging"] is False
    assert proxy["Properties"]["IdleClientTimeout"] == 1800
    assert len(proxy["Properties"]["Auth"]) == 3  # admin + reader + writer
    template.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {"ConnectionPoolConfigurationInfo": {"MaxConnectionsPercent": 50}},
    )
    assert set(built.knobs.user_secrets) == {"reader", "writer"}
    template.resource_count_is("AWS::SecretsManager::Secret", 3)


# --- validation -------------------------------------------------------------------------


@pytest.fixture
def network(make_stack: Callable[..., cdk.Stack]) -> Network:
    return Network(make_stack(), "Network")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_capacity": 0.25}, "min_capacity 0.25 must be from 0 to 256"),
        ({"max_capacity": 300}, "max_capacity 300"),
        ({"min_capacity": 8, "max_capacity": 4}, "max_capacity 4 is below min_capacity 8"),
        ({"min_capacity": 0, "max_capacity": 0.5}, "at least 1"),
        ({"min_capacity": True}, "min_capacity"),
        ({"backup_retention": cdk.Duration.days(36)}, "from 1 to 35"),
        ({"backup_retention": 7}, "must be a Duration"),
        ({"database_name": "my-db"}, "database_name: 'my-db'"),
        ({"database_name": "1db"}, "must start with a letter"),
        ({"master_username": "x" * 33}, "master_username"),
        ({"users": ("admin",)}, "is the master user"),
        ({"users": ("app", "app")}, "more than once"),
        ({"users": ("bad-name",)}, "users: 'bad-name'"),
        ({"max_connections_percent": 0}, "max_connections_percent 0"),
        ({"log_exports": ("error", "binlog")}, "log_exports: 'binlog'"),
    ],
)
def test_invalid_settings_are_clear_errors(
    network: Network, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Database(network, "Database", network=network, **kwargs)


def test_users_must_be_a_sequence_not_a_string(network: Network) -> None:
    with pytest.raises(TypeError, match=r"users must be a sequence"):
        Database(network, "Database", network=network, users="app")
    with pytest.raises(TypeError, match=r"log_exports must be a sequence"):
        Database(network, "Database2", network=network, log_exports="error")


def test_network_must_be_a_pylive_network(make_stack: Callable[..., cdk.Stack]) -> None:
    stack = make_stack()
    with pytest.raises(TypeError, match="pylive Network"):
        Database(stack, "Database", network=object())  # type: ignore[arg-type]


def test_grant_connect_checks_user_and_network(network: Network) -> None:
    database = Database(network, "Database", network=network)
    inside = Function(network, "inside", handler="functions/a.handler", network=network)
    outside = Function(network, "outside", handler="functions/a.handler")
    with pytest.raises(ValueError, match=r"db_user 'nobody' has no secret registered"):
        database.grant_connect(inside, db_user="nobody")
    with pytest.raises(ValueError, match=r"'.*outside' is not in a network"):
        database.grant_connect(outside)
    database.grant_connect(inside, db_user="admin")  # the master user has a secret too
    assert inside.environment["PYLIVE_DB_USER"] == "admin"


def test_grant_connect_accepts_a_plain_lambda_function(network: Network) -> None:
    database = Database(network, "Database", network=network)
    fn = lambda_.Function(
        network,
        "Plain",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
        vpc=network.vpc,
        vpc_subnets=network.private_subnets,
    )
    database.grant_connect(fn)
    resolved = cdk.Stack.of(fn).resolve(fn.connections.security_groups[0].security_group_id)
    assert resolved["Fn::GetAtt"][1] == "GroupId"


def test_allow_from_a_function_without_network_is_a_clear_error(network: Network) -> None:
    database = Database(network, "Database", network=network)
    outside = Function(network, "outside", handler="functions/a.handler")
    with pytest.raises(ValueError, match=r"not in a network"):
        database.allow_from(outside)


def test_fewer_than_two_availability_zones_is_a_synth_error(
    make_stack: Callable[..., cdk.Stack],
) -> None:
    """Aurora's subnet group and the RDS Proxy both need subnets in two AZs; CloudFormation
    would only say so minutes into a deploy."""
    stack = make_stack()
    network = Network(stack, "Network", max_azs=1)
    with pytest.raises(ValueError, match="at least two Availability Zones") as raised:
        Database(stack, "Database", network=network)
    assert "max_azs" in str(raised.value)
