# CUDA detection. check_language(CUDA) only looks on PATH (stack notes, G6), so
# nvcc is also looked up in /usr/local/cuda/bin; pass -DCMAKE_CUDA_COMPILER=...
# to choose one. The architecture defaults to 90a (H100 and H200, with
# Hopper's architecture-specific wgmma, which the wgmma64 prefill kernel
# needs; 90 builds everything else) and must be set before enable_language:
# left unset, CMake would pick 75.
# Sets ACCELLM_HAVE_CUDA, and ACCELLM_HAVE_CUDA_HEADERS where at least the
# toolkit's headers are found (with nvcc, or, without it or with
# ACCELLM_CUDA=OFF, where FindCUDAToolkit finds them): that is all the host
# emulator's tests of the kernels' source need (tests/device/cuda/emu), so
# they also run in a build without nvcc, the sanitizer build of
# deploy/test.sh among them. ACCELLM_CUDA_EMULATOR=OFF leaves them out there.
include_guard(GLOBAL)
set(ACCELLM_HAVE_CUDA OFF)
set(ACCELLM_HAVE_CUDA_HEADERS OFF)
option(ACCELLM_CUDA_EMULATOR
       "Without nvcc, build the host emulator's tests of the CUDA kernels when the toolkit's headers are found"
       ON)
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
if(ACCELLM_HAVE_CUDA)
  set(ACCELLM_HAVE_CUDA_HEADERS ON)
elseif(ACCELLM_CUDA_EMULATOR)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(ACCELLM_HAVE_CUDA_HEADERS ON)
    message(STATUS "CUDA headers ${CUDAToolkit_INCLUDE_DIRS}: the kernels' emulator tests are built")
  endif()
endif()
