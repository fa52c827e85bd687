variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}
