# CUDA detection. check_language(CUDA) only looks on PATH (stack notes, G6), so
# nvcc is also looked up in /usr/local/cuda/bin; pass -DCMAKE_CUDA_COMPILER=...
# to choose one. The architecture defaults to 90a (H100 and H200, with
# Hopper's architecture-specific wgmma, which the wgmma64 prefill kernel
# needs; 90 builds everything else) and must be set before enable_language:
# left unset, CMake would pick 75.
# Sets ACCELLM_HAVE_CUDA.
include_guard(GLOBAL)
set(ACCELLM_HAVE_CUDA OFF)
if(NOT ACCELLM_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(ACCELLM_NVCC nvcc HINTS /usr/local/cuda/bin)
    if(ACCELLM_NVCC)
      set(CMAKE_CUDA_COMPILER "${ACCELLM_NVCC}" CACHE FILEPATH "CUDA compiler")
    endif()
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(ACCELLM_HAVE_CUDA ON)
    message(STATUS "CUDA ${CMAKE_CUDA_COMPILER_VERSION}: ${CMAKE_CUDA_COMPILER}, "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES}")
  elseif(ACCELLM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ACCELLM_CUDA=ON but no nvcc found; pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc")
  else()
    message(STATUS "CUDA: nvcc not found, device/cuda is not built")
  endif()
endif()
