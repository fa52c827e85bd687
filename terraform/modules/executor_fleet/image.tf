# The executor's AMI, built by EC2 Image Builder from the same provisioning script the Lima VM
# runs (deploy/executor/provision.sh): Docker, gVisor, the language images, the executor, the
# agent, the drain watcher and the CloudWatch agent. An AMI is never changed after it is built;
# a new executor release is a new AMI.

resource "aws_imagebuilder_component" "executor" {
  name     = "coderun-${var.environment}-executor"
  platform = "Linux"
  version  = var.executor_version
  data = yamlencode({
    schemaVersion = 1.0
    phases = [{
      name = "build"
      steps = [
        {
          name   = "DownloadRelease"
          action = "S3Download"
          inputs = [{
            source      = "s3://${var.artifacts_bucket}/executor/${var.executor_version}/*"
            destination = "/tmp/coderun-release/"
          }]
        },
        {
          name   = "Provision"
          action = "ExecuteBash"
          inputs = {
            commands = [
              "bash /tmp/coderun-release/provision.sh --artifacts /tmp/coderun-release --cloud aws",
              "rm -rf /tmp/coderun-release",
            ]
          }
        },
      ]
      }, {
      name = "test"
      steps = [{
        name   = "ExecutorInstalled"
        action = "ExecuteBash"
        inputs = {
          commands = [
            "/usr/local/bin/coderun-executor --version",
            "test -x /usr/local/lib/coderun/coderun-agent",
            "systemctl is-enabled coderun-executor coderun-drain-watch",
          ]
        }
      }]
    }]
  })
  kms_key_id = var.kms_key_arn
  # A new version replaces the component while the recipe still refers to the old one.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_imagebuilder_image_recipe" "executor" {
  name         = "coderun-${var.environment}-executor"
  version      = var.executor_version
  parent_image = var.parent_image
  component {
    component_arn = "arn:aws:imagebuilder:${data.aws_region.current.name}:aws:component/amazon-cloudwatch-agent-linux/x.x.x"
  }
  component {
    component_arn = aws_imagebuilder_component.executor.arn
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      volume_size           = 40
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "image_build" {
  name        = "coderun-${var.environment}-executor-image-build"
  description = "coderun executor image builds: out to HTTPS only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "image_build_https" {
  security_group_id = aws_security_group.image_build.id
  description       = "packages, the release artifacts in S3, Image Builder's own endpoints"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "image_build_http" {
  security_group_id = aws_security_group.image_build.id
  description       = "the Debian mirror (apt verifies packages by signature)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_imagebuilder_infrastructure_configuration" "executor" {
  name                          = "coderun-${var.environment}-executor"
  instance_profile_name         = aws_iam_instance_profile.image_build.name
  instance_types                = [var.instance_type]
  subnet_id                     = var.subnet_ids[0]
  security_group_ids            = [aws_security_group.image_build.id]
  terminate_instance_on_failure = true
  instance_metadata_options {
    http_tokens = "required"
  }
}

resource "aws_imagebuilder_distribution_configuration" "executor" {
  name = "coderun-${var.environment}-executor"
  distribution {
    region = data.aws_region.current.name
    ami_distribution_configuration {
      kms_key_id = var.kms_key_arn
      name = "coderun-executor-${var.executor_version}-{{ imagebuilder:buildDate }}"
      ami_tags = {
        "coderun:release" = "executor-v${var.executor_version}"
      }
    }
  }
}

resource "aws_imagebuilder_image_pipeline" "executor" {
  name                             = "coderun-${var.environment}-executor"
  image_recipe_arn                 = aws_imagebuilder_image_recipe.executor.arn
  infrastructure_configuration_arn = aws_imagebuilder_infrastructure_configuration.executor.arn
  distribution_configuration_arn   = aws_imagebuilder_distribution_configuration.executor.arn
  enhanced_image_metadata_enabled  = true
  image_tests_configuration {
    image_tests_enabled = true
    timeout_minutes     = 60
  }
}
