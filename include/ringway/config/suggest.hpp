// Did-you-mean for config keys and names, and the camelCase <-> snake_case spellings that
// protobuf JSON parsers accept for every field (`keepaliveTime` and `keepalive_time`).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringway::config {

// Levenshtein distance, ASCII case-insensitive (so "bindaddress" is 0 away from "bindAddress").
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, when it is close enough to be a plausible typo: at most 2
// edits, or a quarter of the candidate's length for long names. Ties go to the earlier one.
std::optional<std::string> closest(std::string_view word, std::span<const std::string> candidates);

// "keepalive_time" -> "keepaliveTime", "aws_ec2" -> "awsEc2".
std::string snake_to_camel(std::string_view snake);
// "keepaliveTime" -> "keepalive_time", "http1ProtocolOptions" -> "http1_protocol_options".
std::string camel_to_snake(std::string_view camel);

}  // namespace ringway::config
