# Resources pocketcloud refuses, each of which must fail with an error that says what and
# why (never UnknownError, never a silent success), creating nothing.
# tests/compat/test_terraform_more.py applies it and reads the errors.
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

variable "bucket" {
  description = "an existing bucket (the S3 settings pocketcloud does not implement are asked of it)"
  type        = string
}

variable "ami" {
  type = string
}

resource "aws_ebs_encryption_by_default" "on" {
  enabled = true
}

resource "aws_eip" "ip" {
  domain = "vpc"
}

resource "aws_iam_role" "app" {
  name = "compat-app"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

resource "aws_instance" "ipv6" {
  ami                = var.ami
  instance_type      = "t2.nano"
  ipv6_address_count = 1
}

resource "aws_s3_bucket_website_configuration" "site" {
  bucket = var.bucket
  index_document {
    suffix = "index.html"
  }
}

resource "aws_s3_bucket_logging" "logs" {
  bucket        = var.bucket
  target_bucket = var.bucket
  target_prefix = "log/"
}

# Services pocketcloud does not serve at all: each answers in its own protocol (Query, JSON).
resource "aws_sns_topic" "alerts" {
  name = "compat-alerts"
}

resource "aws_cloudwatch_log_group" "app" {
  name = "compat-app"
}
