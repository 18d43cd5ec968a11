#!/bin/sh
# sysrq_crash.sh - crash the kernel on purpose (sysrq c): a real panic to symbolize
#
# @timeout: 30
echo "TAP version 13"
echo "1..1"
echo c > /proc/sysrq-trigger
echo "ok 1 - still alive"
