# Block storage with the official provider: a volume, a snapshot of it, a volume from the
# snapshot, both attached to a container instance. tests/compat/test_terraform_volumes.py
# applies, re-plans (no drift), grows a volume in place and destroys it.
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
variable "data_size" {
  type    = number
  default = 1
}

data "aws_ami" "container" {
  most_recent = true
  owners      = ["pocketcloud"]
  filter {
    name   = "name"
    values = ["tiny-container"]
  }
}

resource "aws_instance" "app" {
  ami               = data.aws_ami.container.id
  instance_type     = "t2.nano"
  availability_zone = "us-east-1a"
  tags              = { Name = "${var.prefix}-app" }
}

resource "aws_ebs_volume" "data" {
  availability_zone = "us-east-1a"
  size              = var.data_size
  type              = "gp3"
  tags              = { Name = "${var.prefix}-data" }
}

resource "aws_ebs_snapshot" "data" {
  volume_id   = aws_ebs_volume.data.id
  description = "${var.prefix} data"
  tags        = { Name = "${var.prefix}-snap" }
}

resource "aws_ebs_volume" "restored" {
  availability_zone = "us-east-1a"
  snapshot_id       = aws_ebs_snapshot.data.id
  tags              = { Name = "${var.prefix}-restored" }
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.app.id
}

resource "aws_volume_attachment" "restored" {
  device_name = "/dev/sdg"
  volume_id   = aws_ebs_volume.restored.id
  instance_id = aws_instance.app.id
}

output "all" {
  value = {
    instance = aws_instance.app.id
    data     = aws_ebs_volume.data.id
    restored = aws_ebs_volume.restored.id
    snapshot = aws_ebs_snapshot.data.id
    size     = aws_ebs_snapshot.data.volume_size
  }
}
