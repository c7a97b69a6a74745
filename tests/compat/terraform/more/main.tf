# The rest of what a Terraform config commonly reads and adopts, beyond the main stack
# (tests/compat/terraform/ec2_s3): lookup data sources, the default VPC and security group
# adopted, the legacy aws_security_group_rule, aws_ec2_tag on a resource Terraform does not
# manage, and the S3 object data sources. tests/compat/test_terraform_more.py applies,
# re-plans and destroys it.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"
}

variable "prefix" {
  type = string
}

data "aws_partition" "here" {}
data "aws_vpcs" "all" {}

data "aws_availability_zone" "a" {
  name = "us-east-1a"
}

# Adopted, as on AWS: Terraform takes the account's default VPC and group into its state;
# destroy leaves them in place.
resource "aws_default_vpc" "default" {
  tags = {
    Name = "default"
  }
}

resource "aws_default_security_group" "default" {
  vpc_id = aws_default_vpc.default.id
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_subnet" "a" {
  vpc_id            = aws_default_vpc.default.id
  availability_zone = data.aws_availability_zone.a.name
}

data "aws_ami_ids" "tiny" {
  owners = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-*"]
  }
}

data "aws_ami" "container" {
  owners = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-container"]
  }
}

data "aws_ec2_instance_type" "nano" {
  instance_type = "t2.nano"
}

data "aws_ec2_instance_types" "t2" {
  filter {
    name   = "instance-type"
    values = ["t2.*"]
  }
}

resource "aws_key_pair" "lab" {
  key_name   = "${var.prefix}-key"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxPdpr2jUq3Pq1q7M0fNqvYbRg0C9lHV0TtXZ3lLQk9 compat"
}

data "aws_key_pair" "lab" {
  key_name = aws_key_pair.lab.key_name
}

resource "aws_security_group" "app" {
  name        = "${var.prefix}-app"
  description = "rules from aws_security_group_rule"
  vpc_id      = aws_default_vpc.default.id
}

resource "aws_security_group_rule" "app_in" {
  type              = "ingress"
  security_group_id = aws_security_group.app.id
  from_port         = 8080
  to_port           = 8080
  protocol          = "tcp"
  cidr_blocks       = ["10.0.0.0/8"]
}

resource "aws_security_group_rule" "app_out" {
  type              = "egress"
  security_group_id = aws_security_group.app.id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
}

data "aws_security_group" "app" {
  id         = aws_security_group.app.id
  depends_on = [aws_security_group_rule.app_in, aws_security_group_rule.app_out]
}

data "aws_security_groups" "in_vpc" {
  filter {
    name   = "vpc-id"
    values = [aws_default_vpc.default.id]
  }
  depends_on = [aws_security_group.app]
}

data "aws_vpc_security_group_rules" "app" {
  filter {
    name   = "group-id"
    values = [aws_security_group.app.id]
  }
  depends_on = [aws_security_group_rule.app_in, aws_security_group_rule.app_out]
}

resource "aws_instance" "app" {
  ami                    = data.aws_ami.container.id
  instance_type          = "t2.nano"
  subnet_id              = data.aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
  key_name               = aws_key_pair.lab.key_name
  tags = {
    Name = "${var.prefix}-app"
  }
}

# A tag on a resource this config does not manage: the subnet it only reads.
resource "aws_ec2_tag" "subnet" {
  resource_id = data.aws_subnet.a.id
  key         = "${var.prefix}-used-by"
  value       = "compat"
}

data "aws_instances" "tagged" {
  instance_tags = {
    Name = "${var.prefix}-app"
  }
  instance_state_names = ["running"]
  depends_on           = [aws_instance.app]
}

data "aws_ebs_volume" "root" {
  most_recent = true
  filter {
    name   = "attachment.instance-id"
    values = [aws_instance.app.id]
  }
}

data "aws_network_interface" "app" {
  id = aws_instance.app.primary_network_interface_id
}

resource "aws_s3_bucket" "notes" {
  bucket        = "${var.prefix}-notes"
  force_destroy = true
}

resource "aws_s3_object" "note" {
  bucket       = aws_s3_bucket.notes.id
  key          = "notes/first.txt"
  content      = "read back by a data source"
  content_type = "text/plain"
}

data "aws_s3_object" "note" {
  bucket = aws_s3_bucket.notes.id
  key    = aws_s3_object.note.key
}

data "aws_s3_objects" "notes" {
  bucket     = aws_s3_bucket.notes.id
  prefix     = "notes/"
  depends_on = [aws_s3_object.note]
}

output "all" {
  value = {
    partition   = data.aws_partition.here.partition
    vpcs        = data.aws_vpcs.all.ids
    default_vpc = aws_default_vpc.default.id
    default_sg  = aws_default_security_group.default.id
    zone_id     = data.aws_availability_zone.a.zone_id
    subnet      = data.aws_subnet.a.id
    amis        = data.aws_ami_ids.tiny.ids
    nano_memory = data.aws_ec2_instance_type.nano.memory_size
    nano_vcpus  = data.aws_ec2_instance_type.nano.default_vcpus
    t2_types    = data.aws_ec2_instance_types.t2.instance_types
    key_id      = aws_key_pair.lab.key_pair_id
    key_read_id = data.aws_key_pair.lab.key_pair_id
    app_sg      = aws_security_group.app.id
    app_sg_read = data.aws_security_group.app.name
    vpc_sgs     = data.aws_security_groups.in_vpc.ids
    app_rules   = data.aws_vpc_security_group_rules.app.ids
    instance    = aws_instance.app.id
    tagged      = data.aws_instances.tagged.ids
    root_volume = data.aws_ebs_volume.root.id
    root_of     = aws_instance.app.root_block_device[0].volume_id
    eni_ip      = data.aws_network_interface.app.private_ip
    instance_ip = aws_instance.app.private_ip
    note_body   = data.aws_s3_object.note.body
    note_keys   = data.aws_s3_objects.notes.keys
  }
}
