# The Node packages' tests — sdk/node (@agate/client), integrations/mcp (agate-mcp-gate) and
# examples/langgraph — for ctest. The root CMakeLists.txt includes this file after the server
# target (add_subdirectory(server)): `include(sdk/node/ctest.cmake)`.
#
# Each package runs `node --test` in its folder against the freshly built agate-server
# (AGATE_SERVER). The builds (`npm run build`: protoc + tsc; generated code is not committed) run
# as ctest fixtures first; the npm dependencies must be installed already (tools/install-npm.sh).

find_program(AGATE_NODE node)
find_program(AGATE_NPM npm)
if(NOT AGATE_NODE OR NOT AGATE_NPM)
  message(WARNING "node/npm not found: the Node SDK, MCP gate and LangGraph tests are not registered "
                  "(install Node 20 and run tools/install-npm.sh)")
  return()
endif()

get_filename_component(_agate_repo "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(_agate_node_env "AGATE_SERVER=${CMAKE_BINARY_DIR}/server/agate-server")

# agate_node_package(NAME DIR REQUIRES): a build fixture and a test for one package.
function(agate_node_package name dir requires)
  add_test(NAME node_${name}_build
           COMMAND sh -c "test -d node_modules || { echo '${dir}: no node_modules: run tools/install-npm.sh first' >&2; exit 1; }; exec '${AGATE_NPM}' run --silent build"
           WORKING_DIRECTORY "${_agate_repo}/${dir}")
  set_tests_properties(node_${name}_build PROPERTIES
                       FIXTURES_SETUP node_${name}
                       FIXTURES_REQUIRED "${requires}"
                       TIMEOUT 600
                       LABELS node)
  add_test(NAME node_${name}_test COMMAND "${AGATE_NODE}" --test WORKING_DIRECTORY "${_agate_repo}/${dir}")
  set_tests_properties(node_${name}_test PROPERTIES
                       FIXTURES_REQUIRED "node_${name};${requires}"
                       ENVIRONMENT "${_agate_node_env}"
                       TIMEOUT 900
                       LABELS node)
endfunction()

agate_node_package(sdk sdk/node "")
agate_node_package(mcp integrations/mcp node_sdk)
agate_node_package(langgraph examples/langgraph node_sdk)
