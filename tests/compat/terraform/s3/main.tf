# The S3 side of a typical Terraform stack, against pocketcloud with the official provider and
# nothing but `eval "$(pocketcloud env)"`: a public static site bucket (ownership, public access
# block, ACL, policy, CORS, lifecycle, versioning, objects from content and from a file), and a
# private log bucket whose versioning stays Disabled.
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

variable "versioning" {
  description = "Suspended on an engine that keeps no versions (the stand-in); Enabled where it does"
  type        = string
  default     = "Suspended"
}

variable "page" {
  type    = string
  default = "<h1>hello from terraform</h1>"
}

variable "expire_days" {
  type    = number
  default = 30
}

resource "aws_s3_bucket" "site" {
  bucket        = "${var.prefix}-site"
  force_destroy = true
  tags = {
    stack = "compat-s3"
  }
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}

resource "aws_s3_bucket_acl" "site" {
  depends_on = [aws_s3_bucket_ownership_controls.site, aws_s3_bucket_public_access_block.site]
  bucket     = aws_s3_bucket.site.id
  acl        = "public-read"
}

data "aws_caller_identity" "me" {}

resource "aws_s3_bucket_policy" "site" {
  depends_on = [aws_s3_bucket_public_access_block.site]
  bucket     = aws_s3_bucket.site.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "PublicRead"
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.site.arn}/*"
    }]
  })
}

resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id
  versioning_configuration {
    status = var.versioning
  }
}

resource "aws_s3_bucket_cors_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  cors_rule {
    id              = "app"
    allowed_headers = ["*"]
    allowed_methods = ["GET", "PUT"]
    allowed_origins = ["https://app.example"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3000
  }
  cors_rule {
    allowed_methods = ["GET"]
    allowed_origins = ["*"]
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    id     = "tmp"
    status = "Enabled"
    filter {
      prefix = "tmp/"
    }
    expiration {
      days = var.expire_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
  rule {
    id     = "old-drafts"
    status = "Disabled"
    filter {
      and {
        prefix = "drafts/"
        tags = {
          state = "old"
        }
      }
    }
    expiration {
      days = 90
    }
  }
}

resource "aws_s3_object" "index" {
  bucket       = aws_s3_bucket.site.id
  key          = "index.html"
  content      = var.page
  content_type = "text/html"
  tags = {
    kind = "page"
  }
}

resource "aws_s3_object" "source" {
  bucket = aws_s3_bucket.site.id
  key    = "src/main.tf"
  source = "${path.module}/main.tf"
  etag   = filemd5("${path.module}/main.tf")
}

resource "aws_s3_bucket" "logs" {
  bucket        = "${var.prefix}-logs"
  force_destroy = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_object" "log" {
  bucket  = aws_s3_bucket.logs.id
  key     = "2026/11/30/app.log"
  content = "started\n"
}

data "aws_s3_bucket" "site" {
  bucket = aws_s3_bucket.site.id
}

output "site_bucket" {
  value = aws_s3_bucket.site.id
}

output "site_arn" {
  value = data.aws_s3_bucket.site.arn
}

output "site_region" {
  value = data.aws_s3_bucket.site.region
}

output "account_id" {
  value = data.aws_caller_identity.me.account_id
}
