# A VPC of its own with the official provider, on real networks (VPC networking on): a VPC, a
# subnet, security groups whose rules name each other (inline `security_groups` on one group;
# `source_security_group_id` and `referenced_security_group_id` as rule resources on another,
# never both kinds on one group), the VPC's adopted default group and three container instances
# in the subnet. tests/compat/test_terraform_vpc.py applies it, checks the traffic the rules allow
# and refuse, re-plans (no drift) and destroys it.
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

variable "prefix" { type = string }
variable "cidr" { type = string }

data "aws_ami" "container" {
  most_recent = true
  owners      = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-container"]
  }
}

resource "aws_vpc" "main" {
  cidr_block           = var.cidr
  enable_dns_hostnames = true
  tags                 = { Name = "${var.prefix}-vpc" }
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(var.cidr, 8, 1)
  availability_zone = "us-east-1a"
  tags              = { Name = "${var.prefix}-a" }
}

resource "aws_security_group" "client" {
  name        = "${var.prefix}-client"
  description = "clients of the web servers"
  vpc_id      = aws_vpc.main.id
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "web" {
  name        = "${var.prefix}-web"
  description = "web servers: port 8080 from the clients' group only"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [aws_security_group.client.id]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "db" {
  name        = "${var.prefix}-db"
  description = "a database reached from the web servers only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group_rule" "db_from_web" {
  type                     = "ingress"
  from_port                = 5432
  to_port                  = 5432
  protocol                 = "tcp"
  source_security_group_id = aws_security_group.web.id
  security_group_id        = aws_security_group.db.id
}

resource "aws_vpc_security_group_ingress_rule" "db_ping_from_clients" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.client.id
  ip_protocol                  = "icmp"
  from_port                    = -1
  to_port                      = -1
}

# The VPC's own default group (made with the VPC), adopted: Terraform revokes what it holds and
# writes these rules, AWS's own two (all traffic from its members, all traffic out).
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol  = -1
    self      = true
    from_port = 0
    to_port   = 0
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# One container per group: the server (web), a client, and an outsider in the db group.
resource "aws_instance" "node" {
  for_each = {
    server   = aws_security_group.web.id
    client   = aws_security_group.client.id
    outsider = aws_security_group.db.id
  }
  ami                    = data.aws_ami.container.id
  instance_type          = "t2.nano"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [each.value]
  tags                   = { Name = "${var.prefix}-${each.key}" }
}

output "all" {
  value = {
    vpc       = aws_vpc.main.id
    subnet    = aws_subnet.a.id
    web       = aws_security_group.web.id
    client    = aws_security_group.client.id
    db        = aws_security_group.db.id
    server    = aws_instance.node["server"].id
    server_ip = aws_instance.node["server"].private_ip
    clients   = aws_instance.node["client"].id
    outsider  = aws_instance.node["outsider"].id
    db_ip     = aws_instance.node["outsider"].private_ip
    main_rtb  = aws_vpc.main.main_route_table_id
    nacl      = aws_vpc.main.default_network_acl_id
    vpc_sg    = aws_vpc.main.default_security_group_id
    adopted   = aws_default_security_group.main.id
  }
}
