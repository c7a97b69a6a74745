# An image of one's own with the official provider: a container instance, an image of it taken
# while it runs (aws_ami_from_instance, snapshot_without_reboot), and an instance launched from
# that image. tests/compat/test_terraform_amis.py applies, re-plans (no drift) and destroys it.
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

data "aws_ami" "container" {
  most_recent = true
  owners      = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-container"]
  }
}

resource "aws_instance" "source" {
  ami           = data.aws_ami.container.id
  instance_type = "t2.nano"
  tags          = { Name = "${var.prefix}-source" }
}

resource "aws_ami_from_instance" "image" {
  name                    = "${var.prefix} image (v1)"
  description             = "an image of ${var.prefix}-source"
  source_instance_id      = aws_instance.source.id
  snapshot_without_reboot = true
  tags                    = { Name = "${var.prefix}-image" }
}

resource "aws_instance" "clone" {
  ami           = aws_ami_from_instance.image.id
  instance_type = "t2.nano"
  tags          = { Name = "${var.prefix}-clone" }
}

output "all" {
  value = {
    source   = aws_instance.source.id
    image    = aws_ami_from_instance.image.id
    snapshot = aws_ami_from_instance.image.root_snapshot_id
    clone    = aws_instance.clone.id
  }
}
