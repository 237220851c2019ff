// oneadapt SDK: everything a plugin needs, in one include.
#pragma once

#include "oneadapt/error.hpp"
#include "oneadapt/knobs.hpp"
#include "oneadapt/modality.hpp"
#include "oneadapt/model.hpp"
#include "oneadapt/params.hpp"
#include "oneadapt/plugin.hpp"
#include "oneadapt/task.hpp"
#include "oneadapt/version.hpp"
