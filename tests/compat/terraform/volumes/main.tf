# Block storage with the official provider: a volume, a snapshot of it, a volume from the
# snapshot, both attached to a container instance; an instance launched with volumes of its own. tests/compat/test_terraform_volumes.py
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

# Volumes at launch: a volume made with the instance (ebs_block_device, deleted with it) and the
# root device described (root_block_device). A container's root cannot be made larger than its
# image here (dockerd sizes writable layers only with storage-opt size), so it states the
# image's size; a VM's can, which tests/integration/test_volume_vms.py covers.
resource "aws_instance" "disks" {
  ami               = data.aws_ami.container.id
  instance_type     = "t2.nano"
  availability_zone = "us-east-1a"
  tags              = { Name = "${var.prefix}-disks" }

  root_block_device {
    volume_size           = 1
    delete_on_termination = true
  }

  ebs_block_device {
    device_name           = "/dev/sdh"
    volume_size           = 2
    volume_type           = "gp3"
    delete_on_termination = true
  }

  ebs_block_device {
    device_name = "/dev/xvdi"
    volume_size = 1
    volume_type = "gp3" # the provider sends throughput for gp3 only
    throughput  = 200
    tags        = { Name = "${var.prefix}-at-launch" }
  }
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
    instance  = aws_instance.app.id
    disks     = aws_instance.disks.id
    at_launch = { for d in aws_instance.disks.ebs_block_device : d.device_name => d.volume_id }
    root      = aws_instance.disks.root_block_device[0].volume_id
    data      = aws_ebs_volume.data.id
    restored  = aws_ebs_volume.restored.id
    snapshot  = aws_ebs_snapshot.data.id
    size      = aws_ebs_snapshot.data.volume_size
  }
}
