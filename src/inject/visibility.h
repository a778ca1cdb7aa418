// Inside the program (libvos.so). Everything is hidden (-fvisibility=hidden) except the wrapped
// libc names, which libvos.map also lists: a slip cannot export or interpose anything else.
#pragma once

#define VOS_EXPORT __attribute__((visibility("default")))
