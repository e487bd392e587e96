//! The REST catalog: connecting, finding or creating the table, and the
//! compare-and-swap guard that makes a commit exactly-once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, Error as IcebergError, ErrorKind, Namespace, NamespaceIdent,
    TableCommit, TableCreation, TableIdent,
};
use iceberg_catalog_rest::{
    REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder,
};
use iceberg_storage_opendal::OpenDalStorageFactory;

use crate::error::ShipError;
use crate::schema::table_schema;

/// Where the table is and how to reach it.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// REST catalog base URI (`http://host:port`, without `/v1`).
    pub uri: String,
    /// Warehouse (for many catalogs the bucket, `s3://bucket`).
    pub warehouse: String,
    /// Namespace, dot-separated levels.
    pub namespace: String,
    /// Table name.
    pub table: String,
    /// OAuth2 client credentials `ID:SECRET` for the catalog's token
    /// endpoint; none = no authentication.
    pub credential: Option<String>,
    /// Extra catalog and FileIO properties (`s3.endpoint`,
    /// `s3.access-key-id`, ...), which override what the catalog vends.
    pub props: HashMap<String, String>,
}

impl CatalogOptions {
    /// `namespace.table`, for messages.
    pub fn table_name(&self) -> String {
        format!("{}.{}", self.namespace, self.table)
    }

    /// The table's identifier.
    pub fn ident(&self) -> Result<TableIdent, ShipError> {
        let mut parts: Vec<String> = self.namespace.split('.').map(str::to_owned).collect();
        parts.push(self.table.clone());
        if parts.iter().any(String::is_empty) {
            return Err(ShipError::Usage(format!(
                "--namespace {:?} / --table {:?}: names must be non-empty (namespace levels are separated by dots)",
                self.namespace, self.table
            )));
        }
        TableIdent::from_strs(parts).map_err(|e| ShipError::Usage(e.to_string()))
    }
}

/// S3 settings from the environment, as the AWS tools read them:
/// `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`), `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`). A custom endpoint turns on path-style access.
pub fn s3_props_from_env(endpoint: Option<String>) -> HashMap<String, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut props = HashMap::new();
    let endpoint = endpoint
        .or_else(|| var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| var("AWS_ENDPOINT_URL"));
    if let Some(e) = endpoint {
        props.insert("s3.endpoint".to_owned(), e);
        props.insert("s3.path-style-access".to_owned(), "true".to_owned());
    }
    for (env, prop) in [
        ("AWS_ACCESS_KEY_ID", "s3.access-key-id"),
        ("AWS_SECRET_ACCESS_KEY", "s3.secret-access-key"),
        ("AWS_SESSION_TOKEN", "s3.session-token"),
    ] {
        if let Some(v) = var(env) {
            props.insert(prop.to_owned(), v);
        }
    }
    if let Some(r) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        props.insert("s3.region".to_owned(), r);
    } else if props.contains_key("s3.endpoint") {
        props.insert("s3.region".to_owned(), "us-east-1".to_owned());
    }
    props
}

/// Connects to the catalog (the OAuth2 token is fetched here, so refused
/// credentials and an unreachable server are reported before any work).
pub async fn connect(opts: &CatalogOptions) -> Result<Arc<dyn Catalog>, ShipError> {
    let mut props = opts.props.clone();
    props.insert(REST_CATALOG_PROP_URI.to_owned(), opts.uri.clone());
    props.insert(
        REST_CATALOG_PROP_WAREHOUSE.to_owned(),
        opts.warehouse.clone(),
    );
    if let Some(c) = &opts.credential {
        props.insert("credential".to_owned(), c.clone());
    }
    let catalog = RestCatalogBuilder::default()
        .with_storage_factory(Arc::new(OpenDalStorageFactory::S3 {
            customized_credential_load: None,
        }))
        .load("ringstore-ship", props)
        .await
        .map_err(|e| ShipError::from_iceberg(&opts.uri, "configuring the catalog client", &e))?;
    if opts.credential.is_some() {
        catalog
            .regenerate_token()
            .await
            .map_err(|e| ShipError::from_iceberg(&opts.uri, "authenticating", &e))?;
    }
    Ok(Arc::new(catalog))
}

/// Attempts of [`load_or_create`] when the catalog fails (creation races).
const CREATE_ATTEMPTS: u32 = 6;

/// Loads the table, creating the namespace and the table (schema in
/// [`crate::schema`]) when missing. Several shippers may race to create
/// them: the loser loads the winner's. A catalog error (some catalogs answer
/// a creation race with a server error) is retried a few times.
pub async fn load_or_create(
    catalog: &dyn Catalog,
    opts: &CatalogOptions,
) -> Result<Table, ShipError> {
    let mut attempt = 1;
    loop {
        match try_load_or_create(catalog, opts).await {
            Err(ShipError::Catalog { .. }) if attempt < CREATE_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_load_or_create(
    catalog: &dyn Catalog,
    opts: &CatalogOptions,
) -> Result<Table, ShipError> {
    let ident = opts.ident()?;
    let err = |op: &'static str| {
        let uri = opts.uri.clone();
        move |e: IcebergError| ShipError::from_iceberg(&uri, op, &e)
    };
    if catalog
        .table_exists(&ident)
        .await
        .map_err(err("looking the table up"))?
    {
        return catalog
            .load_table(&ident)
            .await
            .map_err(err("loading the table"));
    }
    let ns = ident.namespace().clone();
    if !catalog
        .namespace_exists(&ns)
        .await
        .map_err(err("looking the namespace up"))?
    {
        match catalog.create_namespace(&ns, HashMap::new()).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NamespaceAlreadyExists => {}
            Err(e) => return Err(err("creating the namespace")(e)),
        }
    }
    let schema = table_schema().map_err(err("building the schema"))?;
    let creation = TableCreation::builder()
        .name(opts.table.clone())
        .schema(schema)
        .properties([
            ("write.format.default".to_owned(), "parquet".to_owned()),
            (
                "write.parquet.compression-codec".to_owned(),
                "snappy".to_owned(),
            ),
        ])
        .build();
    match catalog.create_table(&ns, creation).await {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == ErrorKind::TableAlreadyExists => catalog
            .load_table(&ident)
            .await
            .map_err(err("loading the table")),
        Err(e) => Err(err("creating the table")(e)),
    }
}

/// Message of the error [`Guarded`] returns when the table moved since the
/// commit was planned.
pub const MOVED: &str = "ringstore-ship: the table changed since this commit was planned";

/// A catalog whose `load_table` fails with [`MOVED`] when the table's
/// metadata is no longer the one a commit was planned against.
///
/// `Transaction::commit` reloads the table and re-applies its actions on the
/// newest metadata when a commit conflicts; for the shipper that would
/// append segments another shipper may have committed meanwhile, and carry
/// a stale watermark. Through this guard, the transaction only ever commits
/// against the exact metadata the shipper read its watermark from, and the
/// catalog's requirement (`assert-ref-snapshot-id` on `main`) makes that a
/// compare-and-swap; on any change the shipper plans again.
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn Catalog>,
    planned: Mutex<Option<String>>,
}

impl Guarded {
    /// Guards commits through `inner` against a table at `metadata_location`.
    pub fn new(inner: Arc<dyn Catalog>, metadata_location: Option<&str>) -> Self {
        Guarded {
            inner,
            planned: Mutex::new(metadata_location.map(str::to_owned)),
        }
    }

    /// Whether an error is the guard's.
    pub fn is_moved(e: &IcebergError) -> bool {
        e.message().contains(MOVED)
    }
}

#[async_trait]
impl Catalog for Guarded {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }
    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }
    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }
    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.inner.namespace_exists(namespace).await
    }
    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }
    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.inner.drop_namespace(namespace).await
    }
    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }
    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        self.inner.create_table(namespace, creation).await
    }
    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        let t = self.inner.load_table(table).await?;
        let planned = self
            .planned
            .lock()
            .map_err(|_| IcebergError::new(ErrorKind::Unexpected, "guard lock poisoned"))?
            .clone();
        if t.metadata_location().map(str::to_owned) != planned {
            return Err(IcebergError::new(ErrorKind::PreconditionFailed, MOVED));
        }
        Ok(t)
    }
    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.drop_table(table).await
    }
    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.purge_table(table).await
    }
    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.inner.table_exists(table).await
    }
    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> iceberg::Result<()> {
        self.inner.rename_table(src, dest).await
    }
    async fn register_table(
        &self,
        table: &TableIdent,
        metadata_location: String,
    ) -> iceberg::Result<Table> {
        self.inner.register_table(table, metadata_location).await
    }
    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        self.inner.update_table(commit).await
    }
}
