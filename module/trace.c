// SPDX-License-Identifier: GPL-2.0
/* Instantiates the cowsnap:* tracepoints declared in cowsnap_trace.h. */
#define CREATE_TRACE_POINTS
#include "cowsnap_trace.h"
