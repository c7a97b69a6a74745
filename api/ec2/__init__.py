"""The EC2 Query API: form-encoded Action=..., SigV4-signed with pocketcloud's keys,
answered in EC2 XML. Handlers are named after the wire actions and only parse, call
emulator.services and render."""
from __future__ import annotations

from emulator.errors import Unauthorized

from ..errors import DryRunOperation, ec2_error
from ..query import QueryService, create_query_app
from . import (amis, attributes, catalog, instances, launch_templates, resources, security_groups, snapshots, unserved,
               volumes, vpc_routing, vpcs)
from .params import boolean
from .xml import response

ACTIONS = {
    **unserved.ACTIONS,  # refused by name; a handler below wins
    "RunInstances": instances.run_instances,
    "DescribeInstances": instances.describe_instances,
    "DescribeInstanceStatus": instances.describe_instance_status,
    "StartInstances": instances.start_instances,
    "StopInstances": instances.stop_instances,
    "RebootInstances": instances.reboot_instances,
    "TerminateInstances": instances.terminate_instances,
    "GetConsoleOutput": instances.get_console_output,
    "DescribeInstanceAttribute": attributes.describe_instance_attribute,
    "ModifyInstanceAttribute": attributes.modify_instance_attribute,
    "DescribeInstanceCreditSpecifications": attributes.describe_instance_credit_specifications,
    "DescribeImages": amis.describe_images,
    "CreateImage": amis.create_image,
    "RegisterImage": amis.register_image,
    "DeregisterImage": amis.deregister_image,
    "DescribeInstanceTypes": catalog.describe_instance_types,
    "DescribeRegions": catalog.describe_regions,
    "DescribeAvailabilityZones": catalog.describe_availability_zones,
    "DescribeAccountAttributes": catalog.describe_account_attributes,
    "CreateKeyPair": resources.create_key_pair,
    "ImportKeyPair": resources.import_key_pair,
    "DescribeKeyPairs": resources.describe_key_pairs,
    "DeleteKeyPair": resources.delete_key_pair,
    "CreateTags": resources.create_tags,
    "DeleteTags": resources.delete_tags,
    "DescribeTags": resources.describe_tags,
    "CreateSecurityGroup": security_groups.create_security_group,
    "DescribeSecurityGroups": security_groups.describe_security_groups,
    "DescribeSecurityGroupRules": security_groups.describe_security_group_rules,
    "AuthorizeSecurityGroupIngress": security_groups.authorize_security_group_ingress,
    "RevokeSecurityGroupIngress": security_groups.revoke_security_group_ingress,
    "AuthorizeSecurityGroupEgress": security_groups.authorize_security_group_egress,
    "RevokeSecurityGroupEgress": security_groups.revoke_security_group_egress,
    "ModifySecurityGroupRules": security_groups.modify_security_group_rules,
    "UpdateSecurityGroupRuleDescriptionsIngress": security_groups.update_security_group_rule_descriptions_ingress,
    "UpdateSecurityGroupRuleDescriptionsEgress": security_groups.update_security_group_rule_descriptions_egress,
    "DeleteSecurityGroup": security_groups.delete_security_group,
    "DescribeVpcs": vpcs.describe_vpcs,
    "DescribeVpcAttribute": vpcs.describe_vpc_attribute,
    "DescribeSubnets": vpcs.describe_subnets,
    "DescribeNetworkInterfaces": vpcs.describe_network_interfaces,
    "CreateVpc": vpcs.create_vpc,
    "DeleteVpc": vpcs.delete_vpc,
    "CreateSubnet": vpcs.create_subnet,
    "DeleteSubnet": vpcs.delete_subnet,
    "CreateDefaultVpc": vpcs.create_default_vpc,
    "DescribeRouteTables": vpc_routing.describe_route_tables,
    "DescribeNetworkAcls": vpc_routing.describe_network_acls,
    "ModifyVpcAttribute": vpc_routing.modify_vpc_attribute,
    # block storage (issue 15)
    "CreateVolume": volumes.create_volume,
    "DescribeVolumes": volumes.describe_volumes,
    "ModifyVolume": volumes.modify_volume,
    "DescribeVolumesModifications": volumes.describe_volumes_modifications,
    "DeleteVolume": volumes.delete_volume,
    "AttachVolume": volumes.attach_volume,
    "DetachVolume": volumes.detach_volume,
    "CreateSnapshot": snapshots.create_snapshot,
    "DescribeSnapshots": snapshots.describe_snapshots,
    "CopySnapshot": snapshots.copy_snapshot,
    "DeleteSnapshot": snapshots.delete_snapshot,
    # launch templates (issue 16)
    "CreateLaunchTemplate": launch_templates.create_launch_template,
    "CreateLaunchTemplateVersion": launch_templates.create_launch_template_version,
    "DescribeLaunchTemplates": launch_templates.describe_launch_templates,
    "DescribeLaunchTemplateVersions": launch_templates.describe_launch_template_versions,
    "ModifyLaunchTemplate": launch_templates.modify_launch_template,
    "DeleteLaunchTemplate": launch_templates.delete_launch_template,
}


def _dry_run(handler):
    """EC2's DryRun: a handler that validates its input first says so (`handles_dry_run`) and
    raises DryRunOperation itself; for the others (reads), a signed caller is always allowed,
    so the answer is DryRunOperation straight away."""
    if getattr(handler, "handles_dry_run", False):
        return handler

    def run(cloud, caller, p):
        if boolean(p, "DryRun"):
            raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")
        return handler(cloud, caller, p)

    return run


def create_ec2_app(cloud):
    return create_query_app(cloud, QueryService(
        name="ec2", actions=ACTIONS, render=response, error=ec2_error, wrap=_dry_run,
        unsigned=lambda: Unauthorized("the request must be signed with AWS Signature Version 4 using a "
                                      "pocketcloud access key (eval \"$(pocketcloud env)\")", code="AuthFailure"),
        unknown_key_code="AuthFailure"))
