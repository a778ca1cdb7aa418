// Host side (the vos command only). fmt's compiled part, built into vos so that vos does not load
// libfmt.so, which would pull in libstdc++.so with it. Every `vos run` starts this binary, and
// loading and relocating those two libraries was about 0.5 ms of the launch overhead (perf: ld.so
// was a fifth of the CLI's CPU time). With this file the command links libstdc++ and libgcc
// statically (src/CMakeLists.txt) and needs only libc and libxxhash at run time.
//
// These are the explicit instantiations of fmt 9's src/format.cc, which Debian does not ship;
// CMake uses this file only with fmt 9.x and links libfmt.so otherwise.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;

template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;

template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void vformat_to(buffer<char>&, string_view,
                                 basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);

}  // namespace detail
FMT_END_NAMESPACE
