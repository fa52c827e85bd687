# Two instance roles: the image build may read the release's artifacts; a running executor may
# read Redis's URL, write its logs and metrics through the CloudWatch agent, and complete its
# own instance's termination hook. Neither can touch any other service's resources.

data "aws_region" "current" {}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "image_build" {
  name               = "coderun-${var.environment}-executor-image-build"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "image_build" {
  for_each = toset([
    "arn:aws:iam::aws:policy/EC2InstanceProfileForImageBuilder",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
  ])
  role       = aws_iam_role.image_build.name
  policy_arn = each.value
}

data "aws_iam_policy_document" "image_build" {
  statement {
    sid       = "ReadTheExecutorRelease"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.artifacts_bucket}", "arn:aws:s3:::${var.artifacts_bucket}/executor/*"]
  }
}

resource "aws_iam_role_policy" "image_build" {
  role   = aws_iam_role.image_build.id
  policy = data.aws_iam_policy_document.image_build.json
}

resource "aws_iam_instance_profile" "image_build" {
  name = "coderun-${var.environment}-executor-image-build"
  role = aws_iam_role.image_build.name
}

resource "aws_iam_role" "executor" {
  name               = "coderun-${var.environment}-executor"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "executor" {
  for_each = toset([
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
  ])
  role       = aws_iam_role.executor.name
  policy_arn = each.value
}

data "aws_iam_policy_document" "executor" {
  statement {
    sid       = "ReadRedisUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.redis_url_secret_arn]
  }
  statement {
    sid       = "DecryptRedisUrl"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "CompleteItsOwnTermination"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [aws_autoscaling_group.executors.arn]
  }
}

resource "aws_iam_role_policy" "executor" {
  role   = aws_iam_role.executor.id
  policy = data.aws_iam_policy_document.executor.json
}

resource "aws_iam_instance_profile" "executor" {
  name = "coderun-${var.environment}-executor"
  role = aws_iam_role.executor.name
}
