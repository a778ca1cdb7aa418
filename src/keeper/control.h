// Host side. Requests from the CLI to a keeper: one JSON object per connection each way.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vos::keeper {

Result<nlohmann::json> send_request(const std::string& socket_path, const nlohmann::json& request);

}  // namespace vos::keeper
