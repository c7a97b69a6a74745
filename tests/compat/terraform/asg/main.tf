# Cattle as code: a launch template and an Auto Scaling group of containers from it, with
# the official hashicorp/aws provider and a provider block holding only the region.
# tests/compat/test_terraform_asg.py applies, re-plans, scales, refreshes and destroys it.
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
variable "ami" {
  type = string
}
variable "instance_type" {
  type    = string
  default = "t2.nano"
}
variable "desired" {
  type    = number
  default = 2
}

resource "aws_launch_template" "web" {
  name                   = "${var.prefix}-web"
  description            = "tiny containers"
  image_id               = var.ami
  instance_type          = var.instance_type
  update_default_version = true
  user_data              = base64encode("#!/bin/sh\necho cattle > /tmp/role\n")

  block_device_mappings {
    device_name = "/dev/vda"
    ebs {
      volume_size           = 2
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      stack = var.prefix
    }
  }
}

resource "aws_autoscaling_group" "web" {
  name                      = "${var.prefix}-web"
  availability_zones        = ["us-east-1a", "us-east-1b"]
  min_size                  = 1
  max_size                  = 4
  desired_capacity          = var.desired
  health_check_type         = "EC2"
  health_check_grace_period = 5

  launch_template {
    id      = aws_launch_template.web.id
    version = aws_launch_template.web.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
      instance_warmup        = 1
    }
  }

  tag {
    key                 = "team"
    value               = var.prefix
    propagate_at_launch = true
  }
}

output "group" {
  value = aws_autoscaling_group.web.name
}
output "template_id" {
  value = aws_launch_template.web.id
}
output "template_version" {
  value = aws_launch_template.web.latest_version
}
