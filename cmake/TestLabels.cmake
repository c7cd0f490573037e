# accellm_label_discovered_tests(TARGET LABELS): gives every test that
# gtest_discover_tests finds in TARGET the labels LABELS (a list, such as
# "unit;cuda"), once they are discovered. Passed to gtest_discover_tests'
# PROPERTIES instead, a list value reaches set_tests_properties as separate
# arguments (CMake 3.25): its second label became a property name, and the
# properties after it were lost.
include_guard(GLOBAL)
function(accellm_label_discovered_tests target labels)
  set(file "${CMAKE_CURRENT_BINARY_DIR}/${target}_labels.cmake")
  file(WRITE "${file}"
       "if(DEFINED ${target}_TESTS)\n"
       "  set_tests_properties(\${${target}_TESTS} PROPERTIES LABELS \"${labels}\")\n"
       "endif()\n")
  # After the include file gtest_discover_tests added, which defines the list.
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${file}")
endfunction()
