# The compat stack: what a first Terraform config against a cloud looks like, applied with
# the official hashicorp/aws provider and a provider block holding only the region.
# tests/compat/test_terraform.py applies, re-plans, changes, imports and destroys it.
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
variable "public_key" {
  type = string
}
variable "instance_type" {
  type    = string
  default = "t2.nano"
}
variable "vm_instance_type" {
  type    = string
  default = "t2.nano"
}
variable "page" {
  type    = string
  default = "v1"
}
variable "env" {
  type    = string
  default = "one"
}

data "aws_caller_identity" "me" {}
data "aws_region" "here" {}
data "aws_availability_zones" "zones" {
  state = "available"
}

data "aws_ami" "container" {
  most_recent = true
  owners      = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-container"]
  }
}

data "aws_ami" "vm" {
  most_recent = true
  owners      = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-*"]
  }
  filter {
    name   = "hypervisor"
    values = ["kvm"]
  }
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

resource "aws_key_pair" "lab" {
  key_name   = "${var.prefix}-key"
  public_key = var.public_key
}

# Inline rules: HTTP in, everything out.
resource "aws_security_group" "web" {
  name        = "${var.prefix}-web"
  description = "web in, all out"
  vpc_id      = data.aws_vpc.default.id
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = {
    Name = "${var.prefix}-web"
  }
}

# No inline rules: the provider revokes the default egress rule, the rules come as resources.
resource "aws_security_group" "ssh" {
  name        = "${var.prefix}-ssh"
  description = "rules as separate resources"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.ssh.id
  cidr_ipv4         = "10.0.0.0/8"
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
  tags = {
    Name = "ssh-in"
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.ssh.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_instance" "web" {
  ami                    = data.aws_ami.container.id
  instance_type          = var.instance_type
  subnet_id              = data.aws_subnets.default.ids[0]
  vpc_security_group_ids = [aws_security_group.web.id, aws_security_group.ssh.id]
  key_name               = aws_key_pair.lab.key_name
  # tiny runs user data once per instance; rc.local starts the web server at every boot.
  user_data = <<-EOT
    #!/bin/sh
    mkdir -p /www
    echo ${var.page} > /www/index.html
    printf '#!/bin/sh\nhttpd -p 80 -h /www\n' > /etc/rc.local
    chmod +x /etc/rc.local
  EOT
  tags = {
    Name = "${var.prefix}-web"
    env  = var.env
  }
}

resource "aws_instance" "vm" {
  ami                    = data.aws_ami.vm.id
  instance_type          = var.vm_instance_type
  availability_zone      = data.aws_availability_zones.zones.names[1]
  vpc_security_group_ids = [aws_security_group.ssh.id]
  key_name               = aws_key_pair.lab.key_name
  tags = {
    Name = "${var.prefix}-vm"
  }
}

data "aws_instance" "web" {
  instance_id = aws_instance.web.id
}

resource "aws_s3_bucket" "data" {
  bucket        = "${var.prefix}-data"
  force_destroy = true
}

resource "aws_s3_object" "hello" {
  bucket  = aws_s3_bucket.data.id
  key     = "hello.txt"
  content = "hello from terraform"
}

resource "aws_s3_object" "file" {
  bucket = aws_s3_bucket.data.id
  key    = "files/main.tf"
  source = "${path.module}/main.tf"
  etag   = filemd5("${path.module}/main.tf")
}

data "aws_s3_bucket" "data" {
  bucket = aws_s3_bucket.data.id
}

output "account_id" {
  value = data.aws_caller_identity.me.account_id
}
output "caller_arn" {
  value = data.aws_caller_identity.me.arn
}
output "region" {
  value = data.aws_region.here.name
}
output "zones" {
  value = data.aws_availability_zones.zones.names
}
output "vpc_id" {
  value = data.aws_vpc.default.id
}
output "vpc_cidr" {
  value = data.aws_vpc.default.cidr_block
}
output "subnet_ids" {
  value = data.aws_subnets.default.ids
}
output "web_id" {
  value = aws_instance.web.id
}
output "web_root" {
  value = aws_instance.web.root_block_device
}
output "web_state" {
  value = data.aws_instance.web.instance_state
}
output "web_subnet" {
  value = aws_instance.web.subnet_id
}
output "vm_id" {
  value = aws_instance.vm.id
}
output "vm_zone" {
  value = aws_instance.vm.availability_zone
}
output "vm_root" {
  value = aws_instance.vm.root_block_device
}
output "web_sg" {
  value = aws_security_group.web.id
}
output "ssh_sg" {
  value = aws_security_group.ssh.id
}
output "ssh_rule_id" {
  value = aws_vpc_security_group_ingress_rule.ssh.security_group_rule_id
}
output "bucket_region" {
  value = data.aws_s3_bucket.data.region
}
