# A three-server NATS JetStream cluster, one server per zone, each with its own encrypted data
# volume. Streams are created with three replicas by the services (bus.stream_replicas = 3), and
# every write is synced before it is acknowledged (deploy/nats/production.conf): an
# acknowledgement is not lost when a server crashes or loses power.

data "aws_subnet" "server" {
  count = 3
  id    = var.subnet_ids[count.index]
}

locals {
  # Fixed addresses, so every server's routes are known before any exists.
  addresses = [for subnet in data.aws_subnet.server : cidrhost(subnet.cidr_block, 10)]
  routes    = [for address in local.addresses : "nats-route://${address}:6222"]
}

resource "aws_security_group" "nats" {
  name        = "coderun-${var.environment}-nats"
  description = "coderun NATS: clients, routes between the servers, monitoring"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS clients from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 4222
  to_port                      = 4222
}

resource "aws_vpc_security_group_ingress_rule" "routes" {
  security_group_id            = aws_security_group.nats.id
  description                  = "cluster routes between the NATS servers"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = 6222
  to_port                      = 6222
}

resource "aws_vpc_security_group_ingress_rule" "monitoring" {
  for_each                     = toset(var.monitor_security_group_ids)
  security_group_id            = aws_security_group.nats.id
  description                  = "NATS monitoring from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 8222
  to_port                      = 8222
}

resource "aws_vpc_security_group_egress_rule" "routes" {
  security_group_id            = aws_security_group.nats.id
  description                  = "cluster routes to the other NATS servers"
  referenced_security_group_id = aws_security_group.nats.id
  ip_protocol                  = "tcp"
  from_port                    = 6222
  to_port                      = 6222
}

resource "aws_vpc_security_group_egress_rule" "image_pull" {
  security_group_id = aws_security_group.nats.id
  description       = "HTTPS out through NAT: the server's image and the SSM agent"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "nats" {
  name               = "coderun-${var.environment}-nats"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# Session Manager for operators instead of SSH; nothing else.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.nats.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "nats" {
  name = "coderun-${var.environment}-nats"
  role = aws_iam_role.nats.name
}

resource "aws_instance" "server" {
  count                  = 3
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index]
  private_ip             = local.addresses[count.index]
  vpc_security_group_ids = [aws_security_group.nats.id]
  iam_instance_profile   = aws_iam_instance_profile.nats.name
  monitoring             = true
  ebs_optimized          = true
  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }
  root_block_device {
    encrypted   = true
    kms_key_id  = var.kms_key_arn
    volume_type = "gp3"
  }
  ebs_block_device {
    device_name = "/dev/sdf"
    volume_size = var.data_volume_gb
    volume_type = "gp3"
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }
  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    server_name = "nats-${count.index + 1}"
    routes      = local.routes
    config      = file("${path.module}/../../../deploy/nats/production.conf")
    image       = var.nats_image
  })
  tags = { Name = "coderun-${var.environment}-nats-${count.index + 1}" }
}
