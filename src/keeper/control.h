// Host side. Requests from the CLI to a keeper: one JSON object per connection each way, the
// reply preceded by any number of progress lines ({"progress": {...}}, one JSON object each).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace vos::keeper {

// `on_progress`, if set, gets the object of each progress line as it arrives.
Result<nlohmann::json> send_request(
    const std::string& socket_path, const nlohmann::json& request,
    const std::function<void(const nlohmann::json&)>& on_progress = {});

}  // namespace vos::keeper
