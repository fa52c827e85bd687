# Remote state: one S3 object per environment, locked with DynamoDB, encrypted. The bucket and
# table are made once per account by hand or by a bootstrap stack (terraform/README.md).
terraform {
  backend "s3" {
    bucket         = "coderun-terraform-state"
    key            = "staging/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "coderun-terraform-locks"
    encrypt        = true
  }
}
