"""``Database``: Aurora Serverless v2 (MySQL) behind an RDS Proxy with IAM authentication.

Functions connect to the proxy, never to the cluster: the proxy pools connections (a burst
of Lambda invocations does not exhaust the database's) and checks an IAM token instead of a
password, so no function holds a database password.

How IAM authentication through the proxy works: a client connects to the proxy as database
user ``U`` with a token signed by a role that may ``rds-db:connect`` as ``U`` on the proxy;
the proxy then opens (or reuses) a connection to the cluster with the password of ``U`` from
a Secrets Manager secret registered with the proxy. So every user a function connects as
has a secret here (``users``, default ``("app",)``): each one's password is generated, and
the user must exist in MySQL with it, once (connect as the admin user, whose credentials are
in ``secret``, and run ``CREATE USER 'app'@'%' IDENTIFIED BY '<password from its secret>'``
plus the grants the app needs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from pylive.constructs.function import Function
from pylive.constructs.network import Network

MYSQL_PORT: Final = 3306
LOG_EXPORTS: Final = ("audit", "error", "general", "slowquery")
# What makes Aurora MySQL write each log it can export (the error log is always written).
# The cluster's default parameter group turns none of them on, so their exports stay empty:
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_LogAccess.MySQL.LogFileSize.html
# (general and slow query logs: general_log, slow_query_log, log_output=FILE) and
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Auditing.html
# (server_audit_logging, and server_audit_events, without which nothing is audited).
AUDIT_EVENTS: Final = "CONNECT,QUERY_DCL,QUERY_DDL"  # not QUERY_DML: statements carry data
_LOG_PARAMETERS: Final[dict[str, dict[str, str]]] = {
    "audit": {"server_audit_logging": "1", "server_audit_events": AUDIT_EVENTS},
    "error": {},
    "general": {"general_log": "1", "log_output": "FILE"},
    "slowquery": {"slow_query_log": "1", "log_output": "FILE"},
}
MIN_ACU, MAX_ACU = 0.0, 256.0
MAX_BACKUP_DAYS: Final = 35
MIN_AZS: Final = 2

ENV_HOST: Final = "PYLIVE_DB_HOST"
ENV_PORT: Final = "PYLIVE_DB_PORT"
ENV_NAME: Final = "PYLIVE_DB_NAME"
ENV_USER: Final = "PYLIVE_DB_USER"
ENV_REGION: Final = "PYLIVE_DB_REGION"

# MySQL identifiers pylive creates or hands to functions: letters, digits, underscores.
_DB_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DB_USER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


class Database(Construct):
    """An Aurora Serverless v2 MySQL cluster in the network's private subnets, and its proxy.

    Required: ``network``, the :class:`~pylive.constructs.network.Network` to live in.
    Keyword arguments (all optional):

    - ``database_name`` (default ``"app"``): the database created in the cluster.
    - ``min_capacity`` / ``max_capacity`` (defaults ``0.5`` / ``16``): the serverless v2
      scaling range in Aurora capacity units (0 to 256, in steps of 0.5; 0 lets the writer
      pause when idle, which needs an engine version that supports it).
    - ``engine_version`` (default ``AuroraMysqlEngineVersion.VER_3_08_0``).
    - ``master_username`` (default ``"admin"``): the admin user; its generated password is
      in the ``secret`` (Secrets Manager).
    - ``users`` (default ``("app",)``): the database users functions connect as through the
      proxy; each gets a generated password in a secret of its own, registered with the
      proxy (see the module documentation for creating them in MySQL).
    - ``removal_policy`` (default ``RemovalPolicy.SNAPSHOT``): what happens to the cluster
      when it leaves the stack: a final snapshot, ``DESTROY`` or ``RETAIN``.
    - ``deletion_protection`` (default ``False``): refuse to delete the cluster.
    - ``backup_retention`` (default ``Duration.days(7)``): automated backups, 1 to 35 days.
    - ``proxy_debug_logging`` (default ``True``, as the architecture pylive follows sets
      it up): the proxy's enhanced logging, detailed connection and SQL logs in CloudWatch
      (RDS switches it off by itself after 24 hours); pass ``False`` where statements may
      hold data that must not be logged.
    - ``idle_client_timeout`` (default ``Duration.hours(2)``): the proxy closes client
      connections idle this long.
    - ``max_connections_percent`` (default ``100``): share of the cluster's connection limit
      the proxy may use.
    - ``log_exports`` (default all four: ``("audit", "error", "general", "slowquery")``):
      the logs exported to CloudWatch Logs. A cluster parameter group turns on what produces
      them: the general log (every statement), the slow query log, and the audit log of
      connections and DDL/DCL statements (``server_audit_events`` = ``CONNECT,QUERY_DCL,
      QUERY_DDL``), all written to files. Leave ``"general"`` out where statements may hold
      data that must not be logged.

    Attributes: ``cluster``, ``proxy``, ``secret`` (admin credentials), ``user_secrets``
    (by user name), ``master_username``, ``cluster_security_group``,
    ``proxy_security_group``, ``endpoint`` (the proxy's host name), ``port`` and
    ``database_name``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        network: Network,
        database_name: str = "app",
        min_capacity: float = 0.5,
        max_capacity: float = 16,
        engine_version: rds.AuroraMysqlEngineVersion = rds.AuroraMysqlEngineVersion.VER_3_08_0,
        master_username: str = "admin",
        users: Sequence[str] = ("app",),
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.SNAPSHOT,
        deletion_protection: bool = False,
        backup_retention: cdk.Duration = cdk.Duration.days(7),  # noqa: B008 (immutable)
        proxy_debug_logging: bool = True,
        idle_client_timeout: cdk.Duration = cdk.Duration.hours(2),  # noqa: B008 (immutable)
        max_connections_percent: int = 100,
        log_exports: Sequence[str] = LOG_EXPORTS,
    ) -> None:
        super().__init__(scope, id)
        if not isinstance(network, Network):
            raise TypeError(f"network must be a pylive Network, not {type(network).__name__}")
        zones = len(network.vpc.availability_zones)
        if zones < MIN_AZS:
            # A DB subnet group (the cluster's, the proxy's) covers at least two AZs
            # (RDS's DBSubnetGroupDoesNotCoverEnoughAZs; "Each DB subnet group should have
            # subnets in at least two Availability Zones" in
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.WorkingWithRDSInstanceinaVPC.html)
            raise ValueError(
                f"Aurora and its RDS Proxy need subnets in at least two Availability Zones, and "
                f"the network {network.node.path} has {zones}; create it with "
                f"Network(..., max_azs=2) or more"
            )
        _check_identifier("database_name", database_name, _DB_NAME_RE)
        _check_identifier("master_username", master_username, _DB_USER_RE)
        if isinstance(users, str):
            raise TypeError(f"users must be a sequence of user names, such as ({users!r},)")
        for user in users:
            _check_identifier("users", user, _DB_USER_RE)
            if user == master_username:
                raise ValueError(
                    f"users: {user!r} is the master user; it already has the admin secret"
                )
        if len(set(users)) != len(users):
            raise ValueError(f"users {list(users)!r} lists a user more than once")
        _check_capacity(min_capacity, max_capacity)
        backup_days = _days("backup_retention", backup_retention)
        if not 1 <= backup_days <= MAX_BACKUP_DAYS or backup_days != int(backup_days):
            raise ValueError(
                f"backup_retention of {backup_days!r} days must be whole days "
                f"from 1 to {MAX_BACKUP_DAYS}"
            )
        if (
            isinstance(max_connections_percent, bool)
            or not isinstance(max_connections_percent, int)
            or not 1 <= max_connections_percent <= 100
        ):
            raise ValueError(
                f"max_connections_percent {max_connections_percent!r} must be from 1 to 100"
            )

        if isinstance(log_exports, str):
            raise TypeError(
                f"log_exports must be a sequence of log names, such as ({log_exports!r},)"
            )
        for log in log_exports:
            if log not in LOG_EXPORTS:
                raise ValueError(
                    f"log_exports: {log!r} is not an Aurora MySQL log "
                    f"(expected some of: {', '.join(LOG_EXPORTS)})"
                )
        exports = [log for log in LOG_EXPORTS if log in log_exports]

        self.network: Network = network
        self.database_name: str = database_name
        self.master_username: str = master_username
        self.port: int = MYSQL_PORT
        vpc = network.vpc

        self.cluster_security_group: ec2.SecurityGroup = ec2.SecurityGroup(
            self,
            "ClusterSecurityGroup",
            vpc=vpc,
            description="Aurora cluster: reachable from its RDS Proxy only",
            allow_all_outbound=False,
        )
        self.proxy_security_group: ec2.SecurityGroup = ec2.SecurityGroup(
            self,
            "ProxySecurityGroup",
            vpc=vpc,
            description="RDS Proxy: reachable from the app functions and VPN clients",
            allow_all_outbound=False,
        )

        engine = rds.DatabaseClusterEngine.aurora_mysql(version=engine_version)
        parameters = {k: v for log in exports for k, v in _LOG_PARAMETERS[log].items()}
        self.cluster: rds.DatabaseCluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=engine,
            parameter_group=(
                rds.ParameterGroup(
                    self,
                    "ClusterParameters",
                    engine=engine,
                    description="Aurora MySQL cluster parameters: the exported logs written",
                    parameters=parameters,
                )
                if parameters
                else None
            ),
            writer=rds.ClusterInstance.serverless_v2("writer", publicly_accessible=False),
            serverless_v2_min_capacity=min_capacity,
            serverless_v2_max_capacity=max_capacity,
            credentials=rds.Credentials.from_generated_secret(master_username),
            default_database_name=database_name,
            iam_authentication=True,
            cloudwatch_logs_exports=exports,
            vpc=vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[self.cluster_security_group],
            port=MYSQL_PORT,
            storage_encrypted=True,
            removal_policy=removal_policy,
            deletion_protection=deletion_protection,
            backup=rds.BackupProps(retention=backup_retention),
        )
        secret = self.cluster.secret
        if secret is None:  # generated credentials always come with a secret
            raise RuntimeError("the Aurora cluster has no secret")
        self.secret: secretsmanager.ISecret = secret

        self.user_secrets: dict[str, secretsmanager.ISecret] = {}
        for user in users:
            self.user_secrets[user] = rds.DatabaseSecret(
                self,
                f"{user}Secret",
                username=user,
                dbname=database_name,
                master_secret=self.secret,
            )

        self.proxy: rds.DatabaseProxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_cluster(self.cluster),
            # unique per account and region, like the stack (and stage) it belongs to
            db_proxy_name=proxy_name(self),
            secrets=[self.secret, *self.user_secrets.values()],
            vpc=vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[self.proxy_security_group],
            iam_auth=True,
            require_tls=True,
            idle_client_timeout=idle_client_timeout,
            max_connections_percent=max_connections_percent,
            debug_logging=proxy_debug_logging,
        )
        # (DatabaseProxy itself opens the cluster's security group to the proxy's, through
        # separate rule resources; the proxy's group must still lose EC2's default egress.)
        keep_no_default_egress(self.proxy_security_group)
        self.endpoint: str = self.proxy.endpoint

        cdk.CfnOutput(self, "ProxyEndpoint", value=self.endpoint, description="RDS Proxy host")
        cdk.CfnOutput(
            self, "SecretArn", value=self.secret.secret_arn, description="Admin credentials"
        )
        cdk.CfnOutput(self, "DatabaseName", value=database_name, description="Database name")
        for user, user_secret in self.user_secrets.items():
            cdk.CfnOutput(
                self,
                f"{user}SecretArn",
                value=user_secret.secret_arn,
                description=f"Credentials of database user {user}",
            )

    @property
    def connections(self) -> ec2.Connections:
        """The proxy's security group: what clients of the database connect to."""
        return self.proxy.connections

    def allow_from(
        self, peer: ec2.IConnectable, description: str = "MySQL through the RDS Proxy"
    ) -> None:
        """Let ``peer`` (a networked :class:`Function`, a :class:`ClientVpn`, any
        ``ec2.IConnectable``) reach the proxy on port 3306."""
        self.proxy.connections.allow_from(peer.connections, ec2.Port.tcp(MYSQL_PORT), description)

    def grant_connect(
        self, function: Function | lambda_.Function, db_user: str = "app"
    ) -> iam.Grant:
        """Let ``function`` connect to the database through the proxy as ``db_user``.

        Grants ``rds-db:connect`` for that one user on this proxy only, opens the proxy's
        security group to the function's, and sets the function's environment:
        ``PYLIVE_DB_HOST`` (the proxy endpoint), ``PYLIVE_DB_PORT`` (3306),
        ``PYLIVE_DB_NAME``, ``PYLIVE_DB_USER`` and ``PYLIVE_DB_REGION``. ``db_user`` must be
        one of ``users`` (or the master user).
        """
        allowed = [*self.user_secrets, self.master_username]
        if db_user not in allowed:
            raise ValueError(
                f"db_user {db_user!r} has no secret registered with the proxy; use one of "
                f"{allowed!r} or add it to Database(..., users=[...])"
            )
        if isinstance(function, Function) and function.network is None:
            raise ValueError(
                f"function {function.node.path!r} is not in a network and could not reach "
                "the database; create it with Function(..., network=network)"
            )
        grant = self.proxy.grant_connect(function.grant_principal, db_user)
        self.allow_from(function, f"MySQL through the RDS Proxy from {function.node.id}")
        environment = {
            ENV_HOST: self.endpoint,
            ENV_PORT: str(MYSQL_PORT),
            ENV_NAME: self.database_name,
            ENV_USER: db_user,
            ENV_REGION: cdk.Stack.of(self).region,
        }
        for key, value in environment.items():
            function.add_environment(key, value)
        return grant


# A rule that matches no traffic (what the CDK puts in a group that allows no outbound traffic).
NO_TRAFFIC_EGRESS: Final = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "FromPort": 252,
    "IpProtocol": "icmp",
    "ToPort": 86,
}


def keep_no_default_egress(group: ec2.SecurityGroup) -> None:
    """Make sure ``group`` never gets EC2's default allow-all egress rule.

    EC2 gives a group created without egress rules one that allows all outbound traffic, and
    separate ``AWS::EC2::SecurityGroupEgress`` resources (the CDK's rules to other security
    groups) add to it rather than replace it
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html).
    The CDK drops its no-traffic placeholder once such a rule exists; this puts it back. The
    group's inline egress rules are replaced by it, so ``group`` must only get egress rules to
    other security groups (which are separate resources)."""
    cfn = group.node.default_child
    if not isinstance(cfn, ec2.CfnSecurityGroup):
        raise TypeError(f"{group.node.path} has no CfnSecurityGroup")
    cfn.add_property_override("SecurityGroupEgress", [NO_TRAFFIC_EGRESS])


def proxy_name(scope: Construct) -> str:
    """A proxy name from the construct path: letters, digits and single hyphens, at most 60
    characters, starting with a letter (RDS Proxy's rules)."""
    raw = cdk.Names.unique_resource_name(scope, max_length=60, separator="-")
    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]", "", raw)).strip("-")
    if not name[:1].isalpha():
        name = ("p" + name)[:60].rstrip("-")
    return name


def _check_identifier(name: str, value: object, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(
            f"{name}: {value!r} must start with a letter and hold only letters, digits and "
            "underscores (MySQL limits names to 64 and users to 32 characters)"
        )


def _check_capacity(low: object, high: object) -> None:
    for name, value in (("min_capacity", low), ("max_capacity", high)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not MIN_ACU <= value <= MAX_ACU
            or value * 2 != int(value * 2)
        ):
            raise ValueError(
                f"{name} {value!r} must be from {MIN_ACU:g} to {MAX_ACU:g} Aurora capacity "
                "units, in steps of 0.5"
            )
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if high < low:
        raise ValueError(f"max_capacity {high!r} is below min_capacity {low!r}")
    if high < 1:
        raise ValueError(f"max_capacity {high!r} must be at least 1 Aurora capacity unit")


def _days(name: str, value: cdk.Duration) -> float:
    if not isinstance(value, cdk.Duration):
        raise ValueError(f"{name} {value!r} must be a Duration such as Duration.days(7)")
    try:
        days: float = value.to_days()
    except RuntimeError as exc:
        raise ValueError(f"{name}: {str(exc).splitlines()[0]}") from None
    return days
